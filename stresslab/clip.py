"""Clip: what one analysis reads (sampled frames, 16 kHz mono audio, text), and load_clip() for every input form.

Accepted forms (pyannote-style: several in, one out):
  - a path to a video (mp4, webm, mov, mkv, avi, flv, ...), an audio file (wav, mp3, flac, ogg, m4a, webm, ...)
    or a still image of a face (jpg, png, bmp, webp);
  - audio as an array with its rate: ``(sample_rate, samples)`` as Gradio gives it, or a 1-D/2-D numpy array
    with ``sample_rate=``;
  - frames as a (T, H, W, 3) uint8 RGB array with ``fps=``;
  - typed text, alone or with any of the above (it overrides any transcript).
Everything is decoded with PyAV (it bundles ffmpeg), still images with Pillow after their size is read from the
header. Limits are settings (ClipLimits); a file that breaks one raises ClipError, whose one-line message names the
file by its base name only (never a server's folder) and says what was wrong and what is accepted.
probe() checks that a file holds media without decoding all of it (the correction store uses it on kept clips).
(Over 300 lines: every input form and every refusal live here, so that each refusal has the same one-line shape.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from .files import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, printable, shown

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


def probe(path: str | os.PathLike, *, limits: ClipLimits | None = None, name: str | None = None) -> str:
    """What a file holds, "video", "audio" or "image", checked cheaply (its header and first decoded frame) under
    the limits load_clip applies. Raises ClipError, naming the file `name` (default: its base name), otherwise."""
    path, limits = Path(path), limits or ClipLimits()
    label = shown(name or path)
    if _check_file(path, label, limits) == "image":
        _load_image(path, label, limits)
        return "image"
    with _open_container(path, label) as container:
        videos, audios = _streams(container, label, limits)
        stream = (videos or audios)[0]
        try:
            decoded = next((f for packet in container.demux(stream) for f in packet.decode()), None)
        except av.error.FFmpegError as e:
            raise ClipError(f"{label}: corrupt file, decoding failed ({_short(e, path)})") from None
        if decoded is None:
            raise ClipError(f"{label}: no frame or sample could be decoded (corrupt file?)")
        if videos and decoded.width * decoded.height > limits.max_pixels:
            raise ClipError(f"{label}: {decoded.width}x{decoded.height} frames are over the {limits.max_pixels} "
                            "pixel limit")
        return "video" if videos else "audio"


def _check_file(path: Path, label: str, limits: ClipLimits) -> str:
    """The checks every file passes before decoding; "image" or "av" (what decodes it)."""
    if not path.exists():
        raise ClipError(f"{label}: no such file")
    if path.is_dir():
        raise ClipError(f"{label}: is a folder; give {ACCEPTED}")
    size = path.stat().st_size
    if size == 0:
        raise ClipError(f"{label}: the file is empty")
    if size > limits.max_bytes:
        raise ClipError(f"{label}: {size / 2**20:.0f} MB is over the {limits.max_bytes / 2**20:.0f} MB limit")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix and suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise ClipError(f"{label}: unsupported file type {shown(suffix)}; give {ACCEPTED}")
    return "av"


def _open_container(path: Path, label: str) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ClipError(f"{label}: corrupt or unsupported file ({_short(e, path)}); give {ACCEPTED}") from None
    if container.format.name in ("tty", "srt", "webvtt", "ass", "lrc"):  # ffmpeg reads text as "video": refuse
        container.close()
        raise ClipError(f"{label}: a text file, not media; give {ACCEPTED}")
    return container


def _streams(container: av.container.InputContainer, label: str, limits: ClipLimits) -> tuple[list, list]:
    """The video streams (cover art left out) and audio streams; refuses a container with neither or too long."""
    videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    audios = list(container.streams.audio)
    if not videos and not audios:
        raise ClipError(f"{label}: holds no video or audio stream; give {ACCEPTED}")
    duration = _container_seconds(container)
    if duration is not None and duration > limits.max_seconds:
        raise ClipError(f"{label}: {duration:.0f} s long; the limit is {limits.max_seconds:.0f} s "
                        "(trim the clip, or raise STRESSLAB_MAX_SECONDS)")
    return videos, audios


def _load_path(path: Path, limits: ClipLimits) -> Clip:
    label = shown(path)
    if _check_file(path, label, limits) == "image":
        rgb = _load_image(path, label, limits)
        return Clip(frames=rgb[None], frame_times=np.zeros(1, np.float32), source=str(path), kind="image")
    with _open_container(path, label) as container:
        return _decode_container(container, path, label, limits)


def _decode_container(container: av.container.InputContainer, path: Path, label: str, limits: ClipLimits) -> Clip:
    videos, audios = _streams(container, label, limits)
    clip = Clip(source=str(path), kind="video" if videos else "audio")
    frames = _FrameSampler(limits, label)
    sound = _AudioCollector(limits, label)
    streams = videos[:1] + audios[:1]
    for stream in streams:
        stream.thread_type = "AUTO"
    try:  # one pass over the packets of both streams (some containers, such as flv, cannot seek back)
        for packet in container.demux(*streams):
            for frame in packet.decode():
                (frames if packet.stream.type == "video" else sound).add(frame)
        clip.audio = sound.finish() if audios else None
    except av.error.FFmpegError as e:
        raise ClipError(f"{label}: corrupt file, decoding failed ({_short(e, path)})") from None
    clip.frames, clip.frame_times = frames.finish()
    if videos and not audios:
        clip.notes.append("the video has no sound track")
    if clip.frames is None and clip.audio is None:
        raise ClipError(f"{label}: no frame or sample could be decoded (corrupt file?)")
    clip.duration = max(_seconds(clip.audio), float(clip.frame_times[-1]) if clip.frame_times is not None else 0.0)
    if clip.duration > limits.max_seconds:
        raise ClipError(f"{label}: {clip.duration:.0f} s long; the limit is {limits.max_seconds:.0f} s")
    return clip


class _FrameSampler:
    """Samples frames at limits.fps: keeps the first frame at or after each tick of 1/fps seconds, down-scaled."""

    def __init__(self, limits: ClipLimits, label: str):
        self.limits, self.label = limits, label
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.next_t = 0.0

    def add(self, frame: av.VideoFrame) -> None:
        limits = self.limits
        t = frame.time if frame.time is not None else len(self.times) / limits.fps
        if t > limits.max_seconds + 1:
            raise ClipError(f"{self.label}: longer than the {limits.max_seconds:.0f} s limit")
        if t + 1e-6 < self.next_t:
            return
        w, h = frame.width, frame.height
        if w * h > limits.max_pixels:
            raise ClipError(f"{self.label}: {w}x{h} frames are over the {limits.max_pixels} pixel limit")
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

    def __init__(self, limits: ClipLimits, label: str):
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self.chunks: list[np.ndarray] = []
        self.n, self.cap = 0, int((limits.max_seconds + 1) * SAMPLE_RATE)
        self.limits, self.label = limits, label

    def add(self, frame: av.AudioFrame) -> None:
        for out in self.resampler.resample(frame):
            self.chunks.append(out.to_ndarray().reshape(-1))
            self.n += self.chunks[-1].size
        if self.n > self.cap:
            raise ClipError(f"{self.label}: longer than the {self.limits.max_seconds:.0f} s limit")

    def finish(self) -> np.ndarray | None:
        for out in self.resampler.resample(None):
            self.chunks.append(out.to_ndarray().reshape(-1))
        if not self.chunks:
            return None
        audio = np.concatenate(self.chunks).astype(np.float32)
        return np.clip(audio, -1.0, 1.0) if audio.size else None


def _load_image(path: Path, label: str, limits: ClipLimits) -> np.ndarray:
    """A still image as (H, W, 3) uint8 RGB, down-scaled; its pixel count is checked from the header first, so an
    over-large image (a decompression bomb) is refused before Pillow decodes, allocates or warns."""
    from PIL import Image

    size = _image_size(path)
    if size is None:
        raise ClipError(f"{label}: corrupt or unsupported image (not a format Pillow reads); give {ACCEPTED}")
    if size[0] * size[1] > limits.max_pixels:
        raise ClipError(f"{label}: {size[0]}x{size[1]} is over the {limits.max_pixels} pixel limit")
    try:
        with Image.open(path) as im:
            if "transparency" in im.info:  # straight to RGB would warn about palette transparency
                im = im.convert("RGBA")
            im = im.convert("RGB")
            im.thumbnail((limits.frame_side, limits.frame_side))
            return np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ClipError(f"{label}: corrupt or unsupported image ({_short(e, path)}); give {ACCEPTED}") from None


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, found the way Image.open identifies a format but without its
    decompression-bomb check (which warns, or raises, by its own threshold); None when no format recognises it."""
    from PIL import Image

    Image.init()
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            verdict = accept(prefix) if accept is not None else True
            if not verdict or isinstance(verdict, str):
                continue
            fp.seek(0)
            try:
                return factory(fp, str(path)).size  # reads the header only
            except Exception:  # not this format (or a broken header): try the next
                continue
    return None


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


def _short(e: Exception, path: Path) -> str:
    """The first line of an error's message, without the file's folder (a server's temporary path)."""
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        return e.strerror
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    for full in {str(path), str(path.absolute()), str(path.resolve())}:
        msg = msg.replace(full, path.name)
    return printable(msg)[:120]
