"""Media files for the tests: the library's writer (stresslab.media.write_media, every accepted format from real
frames and audio) and a decompression-bomb PNG."""

from __future__ import annotations

from pathlib import Path

from stresslab.media import write_media

__all__ = ["huge_png", "write_media"]


def huge_png(path: str | Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 8-bit grayscale PNG of width x height black pixels (a decompression bomb: 20000x20000 is 389 KB on
    disk and 400 MB decoded), written with zlib row by row so that building it allocates one row."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (1 + width)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path
