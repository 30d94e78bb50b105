"""How long visitors' media lives on the server: only as long as their page needs it.

Uploads, recordings and the face images drawn for the gallery all sit in Gradio's upload folder (GRADIO_TEMP_DIR,
which the app gives a folder of its own). Each session's files are remembered by session id and deleted when the
session ends (the tab closes, or its state expires), on any shutdown (SIGTERM and SIGINT included), and whatever a
crash left behind is swept at start-up. The bundled examples' player copies are the only other files there.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("stresslab.app")
RETENTION = ("Your clip, recording or photo and the face images drawn from it stay on the server only while this "
             "page is open: they are deleted when you close it (or after an hour at most), and the server keeps "
             "no copy unless you save a correction and tick *keep my clip*.")


def scrub(text: str, media: str | None, folder: Path) -> str:
    """text (for the log) without the upload folder's path or the upload's file name."""
    if media:
        text = text.replace(str(Path(media).parent), "<upload>").replace(Path(media).name, "<file>")
    return text.replace(str(folder), "<uploads>")


def cache_folder() -> Path:
    """The app's own upload folder (GRADIO_TEMP_DIR; set before Gradio is imported, see app.py)."""
    # one folder per port: two apps on one machine never sweep each other's uploads
    port = os.environ.get("GRADIO_SERVER_PORT", "7860")
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / f"stresslab-app-{port}")


def sweep(folder: Path) -> int:
    """Delete everything inside `folder` (what an earlier run left); returns how many entries went."""
    if not folder.is_dir():
        return 0
    n = 0
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        n += 1
    return n


class SessionFiles:
    """Per-session files in the upload folder, deleted when the session ends. Thread-safe."""

    def __init__(self, folder: Path, keep: set[Path] | None = None):
        self.folder = folder.resolve()
        self.keep = {p.resolve() for p in keep or ()}  # never deleted (the bundled examples)
        self._files: dict[str, set[Path]] = {}
        self._lock = threading.Lock()

    def add(self, session: str | None, *paths: str | Path | None) -> None:
        """Remember files that `session` uploaded or was shown (paths outside the upload folder are ignored)."""
        found = {Path(p).resolve() for p in paths if p}
        found = {p for p in found if p.is_relative_to(self.folder) and p not in self.keep}
        if session and found:
            with self._lock:
                self._files.setdefault(session, set()).update(found)

    def private_dir(self, session: str) -> Path:
        """A folder in the upload folder for files the app draws for this session (face images)."""
        folder = self.folder / f"session-{session}"
        folder.mkdir(parents=True, exist_ok=True)
        self.add(session, folder)
        return folder

    def end(self, session: str | None) -> int:
        """Delete every file of a session (and its folder in the upload folder once empty); returns the count."""
        with self._lock:
            paths = self._files.pop(session or "", set())
        n = 0
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                n += 1
            elif p.exists():
                p.unlink(missing_ok=True)
                n += 1
                parent = p.parent
                if parent != self.folder and parent.is_relative_to(self.folder) and not any(parent.iterdir()):
                    parent.rmdir()
        return n

    def end_all(self) -> None:
        """Delete every session's files (shutdown)."""
        with self._lock:
            sessions = list(self._files)
        for s in sessions:
            self.end(s)


def delete_on_shutdown(folder: Path) -> None:
    """On SIGTERM or SIGINT, empty the upload folder, then stop as the signal would have."""

    def handler(signum: int, frame: object) -> None:
        n = sweep(folder)
        log.info("shutting down (signal %d): %d uploads and drawings deleted", signum, n)
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt  # Gradio's launch() closes the server on it

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, handler)
