"""Clip: what one analysis reads (sampled frames, 16 kHz mono audio, text), and load_clip() for every input form.

Accepted forms (pyannote-style: several in, one out):
  - a path to a video (mp4, webm, mov, mkv, avi, flv, ...), an audio file (wav, mp3, flac, ogg, m4a, webm, ...)
    or a still image of a face (jpg, png, bmp, webp);
  - audio as an array with its rate: ``(sample_rate, samples)`` as Gradio gives it, or a 1-D/2-D numpy array
    with ``sample_rate=``;
  - frames as a (T, H, W, 3) uint8 RGB array with ``fps=``;
  - typed text, alone or with any of the above (it overrides any transcript).
Everything is decoded with PyAV (it bundles ffmpeg). Limits are settings (ClipLimits); a file that breaks one
raises ClipError, whose message says what was wrong and what is accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from .files import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

SAMPLE_RATE = 16_000
ACCEPTED = "a video (mp4, webm, mov, mkv, avi, flv), an audio file (wav, mp3, flac, ogg, m4a, webm), a face image " \
           "(jpg, png, bmp, webp) or typed text"


class ClipError(ValueError):
    """The input cannot be analysed; the message says why and what is accepted."""


@dataclass
class ClipLimits:
    """Input limits. Defaults suit a free 2-vCPU Space; override with STRESSLAB_MAX_SECONDS etc."""

    max_seconds: float = float(os.environ.get("STRESSLAB_MAX_SECONDS", 120))
    max_bytes: int = int(float(os.environ.get("STRESSLAB_MAX_MB", 200)) * 2**20)
    max_pixels: int = 3840 * 2160  # per frame, before down-scaling
    max_text_chars: int = 5000
    frame_side: int = 640  # sampled frames are down-scaled so their longer side is at most this
    fps: float = 4.0  # frames sampled per second of video


@dataclass
class Clip:
    """One clip, decoded. Any of frames, audio, text may be None (that modality is absent).

    frames: (T, H, W, 3) uint8 RGB, sampled at `fps`; frame_times: (T,) seconds from the start;
    audio: (N,) float32 mono at SAMPLE_RATE in [-1, 1]; text: typed words (overrides a transcript).
    """

    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    audio: np.ndarray | None = None
    text: str | None = None
    duration: float = 0.0
    source: str | None = None
    kind: str = "text"  # video | audio | image | text | arrays
    notes: list[str] = field(default_factory=list)  # what the loader noticed (e.g. "the video has no sound track")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE


def load_clip(
    source: str | os.PathLike | np.ndarray | tuple | None = None,
    *,
    text: str | None = None,
    sample_rate: int | None = None,
    fps: float | None = None,
    limits: ClipLimits | None = None,
) -> Clip:
    """Decode any accepted input form into a Clip. Raises ClipError for anything that cannot be read."""
    limits = limits or ClipLimits()
    if text is not None:
        text = text.strip() or None
        if text and len(text) > limits.max_text_chars:
            raise ClipError(f"text is {len(text)} characters long; the limit is {limits.max_text_chars}")
    if source is None:
        if text is None:
            raise ClipError(f"nothing to analyse: give {ACCEPTED}")
        return Clip(text=text, kind="text")
    if isinstance(source, (str, os.PathLike)):
        clip = _load_path(Path(source), limits)
    elif isinstance(source, tuple) and len(source) == 2 and np.isscalar(source[0]):
        clip = _from_audio_array(np.asarray(source[1]), int(source[0]), limits)
    elif isinstance(source, np.ndarray) and source.ndim == 4:
        clip = _from_frames(source, fps or limits.fps, limits)
    elif isinstance(source, np.ndarray) and source.ndim in (1, 2):
        if sample_rate is None:
            raise ClipError("an audio array needs its sample_rate (or pass (sample_rate, samples))")
        clip = _from_audio_array(source, sample_rate, limits)
    else:
        raise ClipError(f"cannot read a {type(source).__name__}; give a file path, (sample_rate, samples), "
                        "a (T, H, W, 3) frame array, or text")
    if text is not None:
        clip.text = text
    return clip


def _load_path(path: Path, limits: ClipLimits) -> Clip:
    if not path.exists():
        raise ClipError(f"{path}: no such file")
    if path.is_dir():
        raise ClipError(f"{path}: is a folder; give {ACCEPTED}")
    size = path.stat().st_size
    if size == 0:
        raise ClipError(f"{path.name}: the file is empty")
    if size > limits.max_bytes:
        raise ClipError(f"{path.name}: {size / 2**20:.0f} MB is over the {limits.max_bytes / 2**20:.0f} MB limit")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _load_image(path, limits)
    if suffix and suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise ClipError(f"{path.name}: unsupported file type {suffix}; give {ACCEPTED}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ClipError(f"{path.name}: corrupt or unsupported file ({_short(e)}); give {ACCEPTED}") from None
    if container.format.name in ("tty", "srt", "webvtt", "ass", "lrc"):  # ffmpeg reads text as "video": refuse
        container.close()
        raise ClipError(f"{path.name}: a text file, not media; give {ACCEPTED}")
    with container:
        return _decode_container(container, path, limits)


def _decode_container(container: av.container.InputContainer, path: Path, limits: ClipLimits) -> Clip:
    videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    audios = list(container.streams.audio)
    if not videos and not audios:
        raise ClipError(f"{path.name}: holds no video or audio stream; give {ACCEPTED}")
    duration = _container_seconds(container)
    if duration is not None and duration > limits.max_seconds:
        raise ClipError(f"{path.name}: {duration:.0f} s long; the limit is {limits.max_seconds:.0f} s "
                        "(trim the clip, or raise STRESSLAB_MAX_SECONDS)")
    clip = Clip(source=str(path), kind="video" if videos else "audio")
    frames = _FrameSampler(limits, path)
    sound = _AudioCollector(limits, path)
    streams = videos[:1] + audios[:1]
    for stream in streams:
        stream.thread_type = "AUTO"
    try:  # one pass over the packets of both streams (some containers, such as flv, cannot seek back)
        for packet in container.demux(*streams):
            for frame in packet.decode():
                (frames if packet.stream.type == "video" else sound).add(frame)
        clip.audio = sound.finish() if audios else None
    except av.error.FFmpegError as e:
        raise ClipError(f"{path.name}: corrupt file, decoding failed ({_short(e)})") from None
    clip.frames, clip.frame_times = frames.finish()
    if videos and not audios:
        clip.notes.append("the video has no sound track")
    if clip.frames is None and clip.audio is None:
        raise ClipError(f"{path.name}: no frame or sample could be decoded (corrupt file?)")
    clip.duration = max(_seconds(clip.audio), float(clip.frame_times[-1]) if clip.frame_times is not None else 0.0)
    if clip.duration > limits.max_seconds:
        raise ClipError(f"{path.name}: {clip.duration:.0f} s long; the limit is {limits.max_seconds:.0f} s")
    return clip


class _FrameSampler:
    """Samples frames at limits.fps: keeps the first frame at or after each tick of 1/fps seconds, down-scaled."""

    def __init__(self, limits: ClipLimits, path: Path):
        self.limits, self.path = limits, path
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.next_t = 0.0

    def add(self, frame: av.VideoFrame) -> None:
        limits = self.limits
        t = frame.time if frame.time is not None else len(self.times) / limits.fps
        if t > limits.max_seconds + 1:
            raise ClipError(f"{self.path.name}: longer than the {limits.max_seconds:.0f} s limit")
        if t + 1e-6 < self.next_t:
            return
        w, h = frame.width, frame.height
        if w * h > limits.max_pixels:
            raise ClipError(f"{self.path.name}: {w}x{h} frames are over the {limits.max_pixels} pixel limit")
        scale = min(1.0, limits.frame_side / max(w, h))
        out_w, out_h = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        self.frames.append(frame.to_ndarray(format="rgb24", width=out_w, height=out_h))
        self.times.append(t)
        while self.next_t <= t + 1e-6:  # ticks stay on a fixed grid, so sampling does not drift
            self.next_t += 1.0 / limits.fps

    def finish(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not self.frames:
            return None, None
        return np.stack(self.frames), np.asarray(self.times, dtype=np.float32)


class _AudioCollector:
    """Resamples decoded audio frames to 16 kHz mono float32."""

    def __init__(self, limits: ClipLimits, path: Path):
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self.chunks: list[np.ndarray] = []
        self.n, self.cap = 0, int((limits.max_seconds + 1) * SAMPLE_RATE)
        self.limits, self.path = limits, path

    def add(self, frame: av.AudioFrame) -> None:
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray().reshape(-1))
            self.n += self.chunks[-1].size
        if self.n > self.cap:
            raise ClipError(f"{self.path.name}: longer than the {self.limits.max_seconds:.0f} s limit")

    def finish(self) -> np.ndarray | None:
        for out in self.resampler.resample(None):
            self.chunks.append(out.to_ndarray().reshape(-1))
        if not self.chunks:
            return None
        audio = np.concatenate(self.chunks).astype(np.float32)
        return np.clip(audio, -1.0, 1.0) if audio.size else None


def _load_image(path: Path, limits: ClipLimits) -> Clip:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > limits.max_pixels:
                raise ClipError(f"{path.name}: {im.width}x{im.height} is over the {limits.max_pixels} pixel limit")
            im = im.convert("RGB")
            im.thumbnail((limits.frame_side, limits.frame_side))
            rgb = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ClipError(f"{path.name}: corrupt or unsupported image ({_short(e)}); give {ACCEPTED}") from None
    return Clip(frames=rgb[None], frame_times=np.zeros(1, np.float32), source=str(path), kind="image")


def _from_audio_array(samples: np.ndarray, sample_rate: int, limits: ClipLimits) -> Clip:
    """(N,) or (N, C) / (C, N) samples of any dtype -> 16 kHz mono float32."""
    import librosa

    if samples.size == 0:
        raise ClipError("the recording is empty")
    if sample_rate <= 0:
        raise ClipError(f"sample rate must be positive, got {sample_rate}")
    x = samples
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = x.astype(np.float32)
    if x.ndim == 2:  # channels last (Gradio) or first: average the short axis
        x = x.mean(axis=1 if x.shape[1] <= x.shape[0] else 0)
    if x.size / sample_rate > limits.max_seconds:
        raise ClipError(f"the recording is {x.size / sample_rate:.0f} s long; the limit is {limits.max_seconds:.0f} s")
    if sample_rate != SAMPLE_RATE:
        x = librosa.resample(x, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    audio = np.clip(x, -1.0, 1.0).astype(np.float32)
    return Clip(audio=audio, duration=_seconds(audio), kind="arrays")


def _from_frames(frames: np.ndarray, fps: float, limits: ClipLimits) -> Clip:
    if frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ClipError(f"frames must be (T, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    if len(frames) / fps > limits.max_seconds:
        raise ClipError(f"{len(frames) / fps:.0f} s of frames; the limit is {limits.max_seconds:.0f} s")
    step = max(1, round(fps / limits.fps))
    kept = frames[::step]
    times = np.arange(0, len(frames), step, dtype=np.float32) / fps
    return Clip(frames=kept, frame_times=times, duration=len(frames) / fps, kind="arrays")


def _container_seconds(container) -> float | None:
    return container.duration / av.time_base if container.duration else None


def _seconds(audio: np.ndarray | None) -> float:
    return 0.0 if audio is None else audio.size / SAMPLE_RATE


def _short(e: Exception) -> str:
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        return e.strerror
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:120]
