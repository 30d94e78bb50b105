"""One home for file formats shared by several modules: which suffix is which medium, and atomic writes.

The clip loader, the correction store and training.prepare all read MEDIA_KINDS; every durable file the project
writes (a correction record, a kept clip, a prepared corpus's metadata) goes through write_atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".flv", ".m4v", ".mpg", ".mpeg", ".ogv", ".3gp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MEDIA_KINDS = {**{s: "video" for s in VIDEO_SUFFIXES}, **{s: "audio" for s in AUDIO_SUFFIXES},
               **{s: "image" for s in IMAGE_SUFFIXES}}


def media_kind(path: str | Path) -> str | None:
    """"video", "audio" or "image" from a file name's suffix (case-insensitive), None when it says nothing."""
    return MEDIA_KINDS.get(Path(path).suffix.lower())


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(dest: Path, tmp_dir: Path, data: bytes | None = None, source: Path | None = None) -> None:
    """Write `data` (or a copy of `source`) to dest: all of it or nothing, durable (fsynced) when this returns."""
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f"{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if source is not None:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
            else:
                f.write(data or b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
