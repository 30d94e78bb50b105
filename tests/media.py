"""Write real media files (any container/codec PyAV's bundled ffmpeg can encode) from decoded frames and audio.
Used by the tests to check every accepted format, and by bench/ to build longer clips from the real ones."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_media(path: str | Path, frames: np.ndarray | None, fps: float, audio: np.ndarray | None,
                sample_rate: int = 16000, vcodec: str = "libx264", acodec: str = "aac") -> Path:
    """frames: (T, H, W, 3) uint8 RGB at fps (or None); audio: (N,) float32 mono (or None) -> a media file."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        vs = aus = None
        if frames is not None:
            vs = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1000))
            vs.height, vs.width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
            vs.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
        if audio is not None:
            rate = 48000 if acodec in ("libopus", "opus") else sample_rate
            aus = out.add_stream(acodec, rate=rate)
            aus.layout = "mono"
            if rate != sample_rate:
                import librosa

                audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=rate)
            sample_rate = rate
        if vs is not None:
            for f in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: vs.height, : vs.width]), format="rgb24")
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
        if aus is not None:
            fmt = aus.codec_context.codec.audio_formats[0].name
            pcm = np.clip(audio, -1, 1)
            chunk = aus.codec_context.frame_size or 1024
            for i in range(0, len(pcm), chunk):
                part = pcm[i: i + chunk]
                if fmt.startswith("s16"):
                    data = (part * 32767).astype(np.int16)[None]
                elif fmt.startswith("s32"):
                    data = (part * 2147483647).astype(np.int32)[None]
                else:
                    data = part.astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(data, format=fmt.rstrip("p") + ("p" if fmt.endswith("p") else ""),
                                                   layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = i
                for packet in aus.encode(frame):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return path


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
