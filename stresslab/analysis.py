"""analyze(): clip -> per-window tower embeddings (each tower runs once) -> fusion -> Analysis.

encode() runs the expensive part once per clip: face detection, the three towers, ASR. It returns Encoded, which
holds one embedding per modality for the whole clip and for each window. fuse() then runs only the heads and the
attention fusion: the answer, each modality's own answer, the ablations (fusion rerun with one modality masked),
the timeline and stress. The app keeps Encoded per session, so switching a modality off reruns fuse() alone.
The JSON form of an Analysis (Analysis.to_dict) is the one schema the CLI, the app and the HTTP API share:
docs/result-schema.md describes it.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .clip import Clip, ClipError, load_clip
from .fusion import MODALITIES
from .labels import stress_from_probs, stress_level, valence_arousal
from .model import StressModel, load_model
from .towers.asr import Transcriber
from .towers.audio import audio_features, is_silent, loudness_db
from .towers.video import FaceDetector, face_crops

SCHEMA_VERSION = 1


class NothingToAnalyze(ClipError):
    """No modality of the clip is usable (no face, silent, no words); the message lists why for each."""


@dataclass
class AnalysisSettings:
    """How a clip is cut into windows and what is computed."""

    window_seconds: float = 3.0  # one timeline point per window
    max_windows: int = 10  # a longer clip gets this many evenly spaced windows: a fixed budget
    min_audio_seconds: float = 0.3  # shorter audio windows count as absent
    ablations: bool = True
    transcribe: bool = True  # run Whisper when no text is typed and a local Whisper model is configured


@dataclass
class Encoded:
    """Tower outputs for one clip. emb[m]: (1 + W, D), row 0 the whole clip, rows 1.. the W windows;
    present: (1 + W, 3) bool in MODALITIES order; reasons[m]: why m is missing (None when present)."""

    emb: dict[str, torch.Tensor]
    present: torch.Tensor
    windows: list[tuple[float, float]]
    reasons: dict[str, str | None]
    transcript: str | None = None
    transcript_source: str | None = None  # "typed" | "whisper"
    faces: list[dict] = field(default_factory=list)  # {"time": s, "box": [x, y, w, h]} per frame with a face
    clip_info: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Analysis:
    """One clip's result. to_dict() gives the shared JSON schema."""

    probabilities: dict[str, float]
    modalities: dict[str, dict]
    ablations: dict[str, dict]
    stress: dict
    timeline: list[dict]
    encoded: Encoded
    model_info: dict
    timings: dict[str, float]

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        e = self.encoded
        return {
            "schema_version": SCHEMA_VERSION,
            "emotion": self.emotion,
            "confidence": self.probabilities[self.emotion],
            "probabilities": self.probabilities,
            "stress": self.stress,
            "modalities": self.modalities,
            "ablations": self.ablations,
            "timeline": self.timeline,
            "transcript": {"text": e.transcript, "source": e.transcript_source},
            "faces": e.faces,
            "clip": e.clip_info,
            "model": self.model_info,
            "timings": self.timings,
        }


@functools.lru_cache(maxsize=2)
def get_transcriber(name: str | None = None) -> Transcriber:
    """The process-wide Whisper transcriber (STRESSLAB_WHISPER when name is None)."""
    return Transcriber(name)


@functools.lru_cache(maxsize=2)
def _face_detector(model: StressModel) -> FaceDetector:
    return FaceDetector(model.config.video)


def plan_windows(duration: float, settings: AnalysisSettings) -> list[tuple[float, float]]:
    """(start, end) seconds of each window: one for short clips, <= max_windows evenly spaced for long ones."""
    w = settings.window_seconds
    if duration <= 1.5 * w:
        return [(0.0, duration)]
    n = math.ceil(duration / w)
    if n <= settings.max_windows:
        bounds = [(i * w, min(duration, (i + 1) * w)) for i in range(n)]
        if bounds[-1][1] - bounds[-1][0] < 0.5 * w:  # a short tail joins the window before it
            bounds[-2:] = [(bounds[-2][0], duration)]
        return bounds
    starts = np.linspace(0.0, duration - w, settings.max_windows)
    return [(float(s), float(s + w)) for s in starts]


@torch.inference_mode()
def encode(clip: Clip, model: StressModel, settings: AnalysisSettings | None = None) -> Encoded:
    """Run face detection, the towers and ASR once: Clip -> Encoded (see the class for shapes)."""
    settings = settings or AnalysisSettings()
    timings: dict[str, float] = {}
    windows = plan_windows(clip.duration, settings)
    n_rows = 1 + len(windows)
    d = model.config.embed_dim
    emb = {m: torch.zeros(n_rows, d) for m in MODALITIES}
    present = torch.zeros(n_rows, len(MODALITIES), dtype=torch.bool)
    reasons: dict[str, str | None] = {}

    faces, reasons["video"] = _encode_video(clip, model, windows, emb["video"], present[:, 0], timings)
    reasons["audio"] = _encode_audio(clip, model, windows, settings, emb["audio"], present[:, 1], timings)
    transcript, source, reasons["text"] = _transcript(clip, settings, bool(present[0, 1]), timings)
    if transcript:
        t = time.perf_counter()
        emb["text"][:] = model.text([transcript])[0]
        present[:, 2] = True
        timings["text"] = time.perf_counter() - t

    if not present[0].any():
        raise NothingToAnalyze("nothing to analyse: " + "; ".join(f"{m}: {reasons[m]}" for m in MODALITIES))
    info = {"source": clip.source, "kind": clip.kind, "duration": round(clip.duration, 3), "notes": clip.notes,
            "windows": [[round(s, 3), round(e, 3)] for s, e in windows]}
    return Encoded(emb, present, windows, reasons, transcript, source, faces, info, timings)


def _encode_video(clip, model, windows, emb, present, timings) -> tuple[list[dict], str | None]:
    if clip.frames is None:
        return [], "no video in this input"
    t = time.perf_counter()
    times = clip.frame_times
    in_any = np.zeros(len(times), bool)
    for s, e in windows:
        in_any |= (times >= s - 1e-3) & (times <= e + 1e-3)
    idx = np.flatnonzero(in_any) if len(windows) > 1 else np.arange(len(times))
    detector = _face_detector(model)
    boxes = [None] * len(times)
    previous = None
    for i in idx:
        boxes[i] = previous = detector.detect(clip.frames[i], near=previous)
    crops, kept = face_crops(clip.frames, boxes, model.config.video)
    timings["faces"] = time.perf_counter() - t
    faces = [{"time": round(float(times[i]), 3), "box": [int(v) for v in boxes[i]]} for i in kept]
    if not kept:
        return faces, f"no face found in {len(idx)} sampled frame{'s' if len(idx) != 1 else ''}"
    t = time.perf_counter()
    frame_emb = model.video.embed_frames(crops)  # (N, D)
    emb[0], present[0] = frame_emb.mean(0), True
    kept_times = times[kept]
    for w, (s, e) in enumerate(windows, start=1):
        sel = (kept_times >= s - 1e-3) & (kept_times <= e + 1e-3) if len(windows) > 1 else np.ones(len(kept), bool)
        if sel.any():
            emb[w], present[w] = frame_emb[torch.from_numpy(sel)].mean(0), True
    timings["video"] = time.perf_counter() - t
    return faces, None


def _encode_audio(clip, model, windows, settings, emb, present, timings) -> str | None:
    if clip.audio is None:
        return "the video has no sound track" if clip.kind == "video" else "no audio in this input"
    cfg = model.config.audio
    if is_silent(clip.audio, cfg):
        return f"silent (loudest 100 ms at {loudness_db(clip.audio, cfg.sample_rate):.0f} dBFS)"
    t = time.perf_counter()
    feats, rows = [], []
    for w, (s, e) in enumerate(windows, start=1):
        seg = clip.audio[int(s * cfg.sample_rate): int(e * cfg.sample_rate)] if len(windows) > 1 else clip.audio
        if seg.size >= settings.min_audio_seconds * cfg.sample_rate and not is_silent(seg, cfg):
            feats.append(audio_features(seg, cfg))
            rows.append(w)
    timings["audio_features"] = time.perf_counter() - t
    if not rows:
        return "too short or silent"
    t = time.perf_counter()
    lengths = torch.tensor([len(f) for f in feats])
    batch = torch.zeros(len(feats), int(lengths.max()), cfg.n_features)
    for i, f in enumerate(feats):
        batch[i, : len(f)] = torch.from_numpy(f)
    wave = None
    if model.audio.speech is not None:
        segs = [clip.audio[int(windows[r - 1][0] * cfg.sample_rate): int(windows[r - 1][1] * cfg.sample_rate)]
                if len(windows) > 1 else clip.audio for r in rows]
        wave = torch.zeros(len(segs), max(s.size for s in segs))
        for i, s in enumerate(segs):
            wave[i, : s.size] = torch.from_numpy(s)
    out = model.audio(batch, lengths, wave)  # (W', D)
    weights = lengths.float() / lengths.sum()
    emb[0], present[0] = (out * weights[:, None]).sum(0), True
    for i, w in enumerate(rows):
        emb[w], present[w] = out[i], True
    timings["audio"] = time.perf_counter() - t
    return None


def _transcript(clip, settings, has_speech, timings) -> tuple[str | None, str | None, str | None]:
    if clip.text:
        return clip.text, "typed", None
    if clip.audio is None:
        return None, None, "no words: type some, or give a clip with speech"
    if not has_speech:
        return None, None, "no speech to transcribe"
    if not settings.transcribe:
        return None, None, "speech recognition is switched off"
    asr = get_transcriber()
    if not asr.available:
        return None, None, asr.unavailable_reason
    t = time.perf_counter()
    text = asr.transcribe(clip.audio).text
    timings["asr"] = time.perf_counter() - t
    return (text, "whisper", None) if text else (None, None, "no words recognised in the speech")


def _probs(logits: torch.Tensor, names: list[str]) -> dict[str, float]:
    p = torch.softmax(logits.float(), -1).tolist()
    return {n: round(v, 5) for n, v in zip(names, p, strict=True)}


def _stress(probs: dict[str, float], learned: float | None) -> dict:
    p = np.array(list(probs.values()))
    valence, arousal = valence_arousal(p)
    score = learned if learned is not None else stress_from_probs(p)
    return {"score": round(float(score), 4), "level": stress_level(score),
            "method": "learned stress head" if learned is not None else "valence/arousal mapping",
            "valence": round(valence, 4), "arousal": round(arousal, 4)}


@torch.inference_mode()
def fuse(model: StressModel, encoded: Encoded, enabled: dict[str, bool] | None = None,
         settings: AnalysisSettings | None = None) -> Analysis:
    """Heads + attention fusion only (no encoder runs): Encoded -> Analysis. enabled switches modalities off."""
    settings = settings or AnalysisSettings()
    names = model.config.emotions
    timings = dict(encoded.timings)
    on = torch.tensor([bool((enabled or {}).get(m, True)) for m in MODALITIES])
    mask = encoded.present & on
    if not mask[0].any():
        raise NothingToAnalyze("every available modality is switched off: switch one on")
    t = time.perf_counter()
    rows = [0] + ([w for w in range(1, len(encoded.windows) + 1) if mask[w].any()] if len(encoded.windows) > 1
                  else [])
    emb = {m: encoded.emb[m][rows] for m in MODALITIES}
    pred = model.predict(emb, mask[rows])
    timings["fusion"] = time.perf_counter() - t
    probs = _probs(pred.fused_logits[0], names)
    learned = float(pred.stress[0]) if pred.stress is not None else None

    modalities = {}
    for j, m in enumerate(MODALITIES):
        own = _probs(pred.modality_logits[m][0], names) if encoded.present[0, j] else None
        modalities[m] = {
            "present": bool(encoded.present[0, j]), "enabled": bool(on[j]),
            "reason": encoded.reasons[m] if not encoded.present[0, j] else (None if on[j] else "switched off"),
            "weight": round(float(pred.weights[0, j]), 5),
            "emotion": max(own, key=own.get) if own else None, "probabilities": own,
        }

    t = time.perf_counter()
    ablations = {}
    drop = [j for j in range(len(MODALITIES)) if mask[0, j]] if settings.ablations and mask[0].sum() > 1 else []
    if drop:
        abl_mask = mask[0].repeat(len(drop), 1)
        for i, j in enumerate(drop):
            abl_mask[i, j] = False
        abl = model.predict({m: encoded.emb[m][:1].expand(len(drop), -1) for m in MODALITIES}, abl_mask)
        for i, j in enumerate(drop):
            p = _probs(abl.fused_logits[i], names)
            shift = 0.5 * sum(abs(p[n] - probs[n]) for n in names)
            ablations[MODALITIES[j]] = {
                "emotion": max(p, key=p.get), "probabilities": p, "shift": round(shift, 5),
                "label_changed": max(p, key=p.get) != max(probs, key=probs.get),
                "stress": _stress(p, float(abl.stress[i]) if abl.stress is not None else None)["score"],
            }
    timings["ablations"] = time.perf_counter() - t

    t = time.perf_counter()
    stress = _stress(probs, learned)
    timeline = []
    for k, w in enumerate(rows[1:], start=1):
        p = _probs(pred.fused_logits[k], names)
        s, e = encoded.windows[w - 1]
        timeline.append({"start": round(s, 3), "end": round(e, 3), "emotion": max(p, key=p.get), "probabilities": p,
                         "stress": _stress(p, float(pred.stress[k]) if pred.stress is not None else None)["score"],
                         "weights": {m: round(float(pred.weights[k, j]), 5) for j, m in enumerate(MODALITIES)}})
    timings["stress"] = time.perf_counter() - t
    info = {"name": model.config.name, "version": model.config.version, "source": getattr(model, "source", None)}
    timings = {k: round(v, 5) for k, v in timings.items()}
    return Analysis(probs, modalities, ablations, stress, timeline, encoded, info, timings)


def analyze(source: Clip | str | object, *, text: str | None = None, model: StressModel | str | None = None,
            settings: AnalysisSettings | None = None, enabled: dict[str, bool] | None = None) -> Analysis:
    """Analyse a clip (a Clip, or anything load_clip accepts) with a model (default: the bundled one)."""
    t0 = time.perf_counter()
    if not isinstance(model, StressModel):
        model = load_model(model)
    if isinstance(source, Clip):
        clip = source
        if text is not None:
            clip.text = text.strip() or None
    else:
        clip = load_clip(source, text=text)
    decode = time.perf_counter() - t0
    encoded = encode(clip, model, settings)
    encoded.timings = {"decode": decode, **encoded.timings}
    result = fuse(model, encoded, enabled, settings)
    result.timings["total"] = round(time.perf_counter() - t0, 5)
    return result
