"""One home for file formats shared by several modules: which suffix is which medium, atomic writes, and how a
file is named in a one-line message.

The clip loader, the correction store and training.prepare all read MEDIA_KINDS; every durable file the project
writes (a correction record, a kept clip, a prepared corpus's metadata) goes through write_atomic.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".flv", ".m4v", ".mpg", ".mpeg", ".ogv", ".3gp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MEDIA_KINDS = {**{s: "video" for s in VIDEO_SUFFIXES}, **{s: "audio" for s in AUDIO_SUFFIXES},
               **{s: "image" for s in IMAGE_SUFFIXES}}


def media_kind(path: str | Path) -> str | None:
    """"video", "audio" or "image" from a file name's suffix (case-insensitive), None when it says nothing."""
    return MEDIA_KINDS.get(Path(path).suffix.lower())


def printable(text: str) -> str:
    """text with control characters (a newline in a file name, an escape sequence) escaped: one line, inert."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda m: m.group().encode("unicode_escape").decode(), text)


def shown(path: str | os.PathLike) -> str:
    """How a message names a file: its base name only (never the folder it sits in, e.g. a server's temporary
    folder), printable."""
    return printable(Path(path).name)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(dest: Path, tmp_dir: Path, data: bytes | None = None, source: Path | BinaryIO | None = None,
                 check: Callable[[Path], object] | None = None) -> None:
    """Write `data` (or a copy of `source`, a path or an open binary file) to dest: all of it or nothing, durable
    (fsynced) when this returns. `check(temp_path)` may inspect the written copy (it keeps dest's suffix) and raise
    to refuse it: then nothing lands."""
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=f"{dest.name}.", suffix=dest.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
            elif source is not None:
                shutil.copyfileobj(source, f, 1 << 20)
            else:
                f.write(data or b"")
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
