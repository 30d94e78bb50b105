"""Write frames and audio into a media file: the inverse of load_clip (PyAV's bundled ffmpeg encodes it).

save_clip() keeps a Clip (the live view's last seconds, say) as an mp4 that load_clip reads back; write_media() is
the general form the tests use for every accepted container and codec, and bench/ for longer clips.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .clip import SAMPLE_RATE, Clip


def write_media(path: str | Path, frames: np.ndarray | None, fps: float, audio: np.ndarray | None,
                sample_rate: int = SAMPLE_RATE, vcodec: str = "libx264", acodec: str = "aac",
                frame_times: np.ndarray | None = None) -> Path:
    """frames: (T, H, W, 3) uint8 RGB at fps, or at frame_times (T,) seconds when given (or None); audio: (N,)
    float32 mono in [-1, 1] at sample_rate (or None) -> the media file at path (its suffix picks the container)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        vs = aus = None
        if frames is not None:
            vs = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1000))
            vs.height, vs.width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
            vs.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
            if frame_times is not None:
                vs.time_base = Fraction(1, 1000)
        if audio is not None:
            rate = 48000 if acodec in ("libopus", "opus") else sample_rate
            aus = out.add_stream(acodec, rate=rate)
            aus.layout = "mono"
            if rate != sample_rate:
                import librosa

                audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=rate)
            sample_rate = rate
        if vs is not None:
            for i, f in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: vs.height, : vs.width]), format="rgb24")
                if frame_times is not None:
                    frame.pts, frame.time_base = round(float(frame_times[i]) * 1000), Fraction(1, 1000)
                out.mux(vs.encode(frame))
            out.mux(vs.encode())
        if aus is not None:
            _write_audio(out, aus, np.clip(audio, -1, 1), sample_rate)
    return path


def _write_audio(out, aus, pcm: np.ndarray, sample_rate: int) -> None:
    fmt = aus.codec_context.codec.audio_formats[0].name
    chunk = aus.codec_context.frame_size or 1024
    for i in range(0, len(pcm), chunk):
        part = pcm[i: i + chunk]
        if fmt.startswith("s16"):
            data = (part * 32767).astype(np.int16)[None]
        elif fmt.startswith("s32"):
            data = (part * 2147483647).astype(np.int32)[None]
        else:
            data = part.astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate, frame.pts = sample_rate, i
        out.mux(aus.encode(frame))
    out.mux(aus.encode())


def save_clip(clip: Clip, path: str | Path) -> Path:
    """A Clip (frames at their times, 16 kHz audio) -> an mp4 (H.264 + AAC) at path that load_clip reads back."""
    if clip.frames is None and clip.audio is None:
        raise ValueError("the clip has neither frames nor audio to write")
    times = clip.frame_times if clip.frames is not None else None
    fps = 4.0 if times is None or len(times) < 2 else max(1.0, 1.0 / float(np.median(np.diff(times))))
    return write_media(path, clip.frames, fps, clip.audio, frame_times=times)
