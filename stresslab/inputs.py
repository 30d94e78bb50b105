"""Clip -> tower inputs: the one step that turns decoded media into what the towers read.

Analysis, evaluation and every training stage call tower_inputs(), so the model is trained on exactly what it sees
at run time: the same face finder (tracking from frame to frame), the same crops, the same audio windows, the same
silence decision, the same features. embed() then runs the video and audio towers over those inputs through a
runtime Backend (torch or onnxruntime). Everything here is numpy.

Windows are (start, end) seconds; row 0 of everything embedded is the whole clip, rows 1.. the windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .clip import Clip
from .labels import MODALITIES
from .runtime.base import Backend
from .towers.audio import audio_features, is_silent, loudness_db
from .towers.video import FaceDetector, face_crop_array

Window = tuple[float, float]


@dataclass
class TowerInputs:
    """What the video and audio towers read for one clip.

    crops: (N, C, S, S) float32 face crops in [-1, 1] (None: no face / no video); crop_times: (N,) seconds;
    faces: {"time", "box": [x, y, w, h]} per crop; audio_feats: one (T, F) array per usable window, audio_rows: the
    window number (1..W) of each; audio_waves: those windows' (n,) 16 kHz samples (for a pretrained speech
    encoder); reasons[m]: why video/audio is missing, None when present.
    """

    windows: list[Window]
    crops: np.ndarray | None = None
    crop_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    faces: list[dict] = field(default_factory=list)
    audio_feats: list[np.ndarray] = field(default_factory=list)
    audio_rows: list[int] = field(default_factory=list)
    audio_waves: list[np.ndarray] = field(default_factory=list)
    reasons: dict[str, str | None] = field(default_factory=lambda: {"video": None, "audio": None})
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "faces", "audio_features"


def _in_window(times: np.ndarray, window: Window) -> np.ndarray:
    return (times >= window[0] - 1e-3) & (times <= window[1] + 1e-3)


def pick_frames(times: np.ndarray, windows: list[Window], per_window: int) -> np.ndarray:
    """Indices of the frames to search for faces: at most per_window evenly spaced frames in each window."""
    chosen: list[int] = []
    for w in windows:
        idx = np.flatnonzero(_in_window(times, w))
        if len(idx) > per_window:
            idx = idx[np.round(np.linspace(0, len(idx) - 1, per_window)).astype(int)]
        chosen.extend(int(i) for i in idx)
    return np.array(sorted(set(chosen)), dtype=int)


def tower_inputs(clip: Clip, config, windows: list[Window] | None = None,
                 detector: FaceDetector | None = None, min_audio_seconds: float = 0.3,
                 frames_per_window: int = 12) -> TowerInputs:
    """Clip -> TowerInputs (config: a ModelConfig). windows None: the whole clip is one window. Reads the clip,
    never changes it."""
    windows = windows or [(0.0, float(clip.duration))]
    out = TowerInputs(windows=list(windows))
    t = time.perf_counter()
    out.reasons["video"] = _video_inputs(clip, config, windows, detector, frames_per_window, out)
    out.timings["faces"] = time.perf_counter() - t
    t = time.perf_counter()
    out.reasons["audio"] = _audio_inputs(clip, config, windows, min_audio_seconds, out)
    out.timings["audio_features"] = time.perf_counter() - t
    return out


def _video_inputs(clip, config, windows, detector, per_window, out: TowerInputs) -> str | None:
    if clip.frames is None or len(clip.frames) == 0:
        return "no video in this input"
    times = np.asarray(clip.frame_times if clip.frame_times is not None else np.zeros(len(clip.frames)), np.float32)
    idx = pick_frames(times, windows, per_window) if len(windows) > 1 else np.arange(len(times))
    detector = detector or FaceDetector(config.video)
    boxes: list = [None] * len(times)
    previous = None
    for i in idx:
        boxes[i] = previous = detector.detect(clip.frames[i], near=previous)
    crops, kept = face_crop_array(clip.frames, boxes, config.video)
    out.faces = [{"time": round(float(times[i]), 3), "box": [int(v) for v in boxes[i]]} for i in kept]
    if not kept:
        return f"no face found in {len(idx)} sampled frame{'s' if len(idx) != 1 else ''}"
    out.crops, out.crop_times = crops, times[kept]
    return None


def _audio_inputs(clip, config, windows, min_seconds, out: TowerInputs) -> str | None:
    if clip.audio is None:
        return "the video has no sound track" if clip.kind == "video" else "no audio in this input"
    cfg = config.audio
    if is_silent(clip.audio, cfg):
        return f"silent (loudest 100 ms at {loudness_db(clip.audio, cfg.sample_rate):.0f} dBFS)"
    for w, (s, e) in enumerate(windows, start=1):
        seg = clip.audio[int(s * cfg.sample_rate): int(e * cfg.sample_rate)] if len(windows) > 1 else clip.audio
        if seg.size >= min_seconds * cfg.sample_rate and not is_silent(seg, cfg):
            out.audio_feats.append(audio_features(seg, cfg))
            out.audio_rows.append(w)
            out.audio_waves.append(seg)
    return None if out.audio_rows else "too short or silent"


def pad_features(feats: list[np.ndarray], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A list of (T_i, F) arrays -> ((B, T_max, F) float32 zero-padded batch, (B,) int64 lengths)."""
    lengths = np.array([len(f) for f in feats], np.int64)
    batch = np.zeros((len(feats), int(lengths.max()), n_features), np.float32)
    for i, f in enumerate(feats):
        batch[i, : len(f)] = f
    return batch, lengths


def pad_waves(waves: list[np.ndarray]) -> np.ndarray:
    """A list of (n_i,) arrays -> (B, n_max) float32 zero-padded batch."""
    out = np.zeros((len(waves), max(w.size for w in waves)), np.float32)
    for i, w in enumerate(waves):
        out[i, : w.size] = w
    return out


@dataclass
class Embedded:
    """emb[m]: (1 + W, D) tower embeddings, row 0 the whole clip; present: (1 + W, 3) bool in MODALITIES order;
    frame_emb: (N, D) the video tower's embedding of each face crop (None without faces)."""

    emb: dict[str, np.ndarray]
    present: np.ndarray
    frame_emb: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "video", "audio"


def embed(inputs: TowerInputs, backend: Backend) -> Embedded:
    """Run the video and audio towers over TowerInputs (text is embedded by the caller): -> Embedded."""
    windows = inputs.windows
    n_rows, d = 1 + len(windows), backend.config.embed_dim
    emb = {m: np.zeros((n_rows, d), np.float32) for m in MODALITIES}
    present = np.zeros((n_rows, len(MODALITIES)), bool)
    frame_emb, timings = None, {}
    t = time.perf_counter()
    if inputs.crops is not None:
        frame_emb = backend.embed_frames(inputs.crops)  # (N, D)
        emb["video"][0], present[0, 0] = frame_emb.mean(0), True
        for w, window in enumerate(windows, start=1):
            sel = _in_window(inputs.crop_times, window) if len(windows) > 1 else np.ones(len(frame_emb), bool)
            if sel.any():
                emb["video"][w], present[w, 0] = frame_emb[sel].mean(0), True
        timings["video"] = time.perf_counter() - t
    t = time.perf_counter()
    if inputs.audio_rows:
        batch, lengths = pad_features(inputs.audio_feats, backend.config.audio.n_features)
        waves = pad_waves(inputs.audio_waves) if backend.uses_waveform else None
        out = backend.embed_audio(batch, lengths, waves)  # (W', D)
        weights = lengths / lengths.sum()
        emb["audio"][0], present[0, 1] = (out * weights[:, None]).sum(0), True
        for i, w in enumerate(inputs.audio_rows):
            emb["audio"][w], present[w, 1] = out[i], True
        timings["audio"] = time.perf_counter() - t
    return Embedded(emb, present, frame_emb, timings)
