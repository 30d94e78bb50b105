"""Analyzer: clip -> tower inputs -> tower embeddings (each tower runs once) -> fusion -> Analysis.

An Analyzer owns what an analysis needs, loaded once: the model, the face detector, the speech recogniser and the
settings (in the spirit of pyannote's Inference). encode() runs the expensive part once per clip (face finding, the
towers, ASR) and returns Encoded: one embedding per modality for the whole clip and for each window. fuse() then
runs only the heads and the attention fusion: the answer, each modality's own answer, the ablations (fusion rerun
with one modality masked), the timeline and stress. The app keeps Encoded per session, so switching a modality off
reruns fuse() alone. Analysis.to_dict() is the one JSON schema that the CLI, the app and the HTTP API share
(docs/result-schema.md). The module-level analyze/encode/fuse are thin wrappers over a per-model Analyzer.
The model runs behind a runtime Backend (torch or onnxruntime), so this module is numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .clip import Clip, ClipError, load_clip
from .evidence import bound_by_evidence
from .inputs import TowerInputs, Window, embed, tower_inputs
from .labels import MODALITIES, stress_from_probs, stress_level, valence_arousal
from .runtime import Backend, Scores, load_backend, sync_torch_threads
from .towers.asr import Transcriber
from .towers.video import FaceDetector

SCHEMA_VERSION = 3  # 2 adds "used", "uncertain", "top2" and a per-face emotion; 3 per-window "modalities", "words"


class NothingToAnalyze(ClipError):
    """No modality of the clip is usable (no face, silent, no words); the message lists why for each."""


@dataclass
class AnalysisSettings:
    """How a clip is cut into windows and what is computed."""

    window_seconds: float = 3.0  # the shortest window; longer clips get longer windows
    max_windows: int = 10  # at most this many windows, together covering the whole clip: a fixed budget
    frames_per_window: int = 12  # faces are searched in at most this many evenly spaced frames per window
    min_audio_seconds: float = 0.3  # shorter audio windows count as absent
    ablations: bool = True
    transcribe: bool = True  # run Whisper when no text is typed and a speech recogniser is available


@dataclass
class Encoded:
    """Tower outputs for one clip. emb[m]: (1 + W, D), row 0 the whole clip, rows 1.. the W windows;
    present: (1 + W, 3) bool in MODALITIES order; reasons[m]: why m is missing (None when present);
    faces: {"time", "box", "emotion", "confidence"} per frame whose face the video tower read."""

    emb: dict[str, np.ndarray]
    present: np.ndarray
    windows: list[Window]
    reasons: dict[str, str | None]
    transcript: str | None = None
    transcript_source: str | None = None  # "typed" | "whisper"
    segments: list[dict] = field(default_factory=list)  # {"start", "end", "text"} timed words (Whisper only)
    faces: list[dict] = field(default_factory=list)
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
    not_sure_below: float = 0.0

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def uncertain(self) -> bool:
        """True when the fused confidence is below the model's validated "not sure" threshold."""
        return self.probabilities[self.emotion] < self.not_sure_below

    def to_dict(self, private: bool = False) -> dict:
        """The JSON form. private=True leaves out where the clip came from (a path or file name)."""
        e = self.encoded
        clip = {k: v for k, v in e.clip_info.items() if not (private and k == "source")}
        top2 = sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:2]
        return {
            "schema_version": SCHEMA_VERSION,
            "emotion": self.emotion,
            "confidence": self.probabilities[self.emotion],
            "uncertain": self.uncertain,
            "top2": [[n, p] for n, p in top2],
            "probabilities": self.probabilities,
            "stress": self.stress,
            "used": [m for m, v in self.modalities.items() if v["present"] and v["enabled"]],
            "modalities": self.modalities,
            "ablations": self.ablations,
            "timeline": self.timeline,
            "transcript": {"text": e.transcript, "source": e.transcript_source, "segments": e.segments},
            "faces": e.faces,
            "clip": clip,
            "model": self.model_info,
            "timings": self.timings,
        }


@functools.lru_cache(maxsize=2)
def get_transcriber(name: str | None = None) -> Transcriber:
    """The process-wide Whisper transcriber (STRESSLAB_WHISPER when name is None): loaded once, shared."""
    return Transcriber(name)


def plan_windows(duration: float, settings: AnalysisSettings) -> list[Window]:
    """(start, end) seconds of each window: one for a short clip, else at most max_windows contiguous windows of
    at least window_seconds that together cover the whole clip (a long clip gets longer windows)."""
    w = settings.window_seconds
    if duration <= 1.5 * w:
        return [(0.0, duration)]
    w = max(w, duration / settings.max_windows)
    n = math.ceil(duration / w - 1e-9)
    bounds = [(i * w, min(duration, (i + 1) * w)) for i in range(n)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 0.5 * w:  # a short tail joins the window before it
        bounds[-2:] = [(bounds[-2][0], duration)]
    return [(round(s, 6), round(e, 6)) for s, e in bounds]


def words_by_window(segments: list[dict], windows: list[Window]) -> list[str]:
    """Timed transcript segments ({"start", "end", "text"}, s) -> the words spoken in each (start, end) window: the
    texts of the segments overlapping it, in order, joined by spaces ("" when none does). A segment that crosses a
    window boundary belongs to every window it overlaps; the last window also takes what Whisper timed past its end."""
    out = []
    for i, (s, e) in enumerate(windows):
        e = math.inf if i == len(windows) - 1 else e
        out.append(" ".join(g["text"] for g in segments
                            if g["start"] < e and max(g["end"], g["start"] + 1e-6) > s and g["text"]))
    return out


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(..., K) logits -> probabilities over the last axis, after dividing by temperature."""
    z = np.asarray(logits, np.float64) / temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _named(probs: np.ndarray, names: list[str]) -> dict[str, float]:
    return {n: round(float(v), 5) for n, v in zip(names, probs, strict=True)}


def as_backend(model: object = None, runtime: str | None = None) -> Backend:
    """A Backend from a Backend, a torch StressModel, a folder / Hub id, or None (the bundled default)."""
    if hasattr(model, "embed_frames") and hasattr(model, "predict"):
        return model  # already a Backend
    if hasattr(model, "state_dict"):  # a torch StressModel (training's class)
        from .runtime.torch_backend import TorchBackend

        sync_torch_threads()
        return TorchBackend(model)
    return load_backend(model, runtime)


def _stress(probs: dict[str, float], learned: float | None) -> dict:
    p = np.array(list(probs.values()))
    valence, arousal = valence_arousal(p)
    score = learned if learned is not None else stress_from_probs(p)
    return {"score": round(float(score), 4), "level": stress_level(score),
            "method": "learned stress head" if learned is not None else "valence/arousal mapping",
            "valence": round(valence, 4), "arousal": round(arousal, 4)}


class Analyzer:
    """Owns a model, its face detector, the speech recogniser and the settings; analyses clips.

        analyzer = Analyzer()                       # the bundled default (or a folder / Hub id / StressModel)
        result = analyzer.analyze("clip.mp4")       # -> Analysis
        encoded = analyzer.encode(clip)             # the towers, once
        no_voice = analyzer.fuse(encoded, enabled={"audio": False})   # fusion only
    """

    def __init__(self, model: object = None, settings: AnalysisSettings | None = None, whisper: str | None = None,
                 runtime: str | None = None):
        self.backend = as_backend(model, runtime)  # runtime: "torch" | "onnx" | None (from the folder)
        self.config = self.backend.config
        self.settings = settings or AnalysisSettings()
        self.detector = FaceDetector(self.config.video)
        self.whisper = whisper  # None: STRESSLAB_WHISPER
        self._lock = threading.RLock()  # one analysis at a time: the towers already use every core

    @property
    def transcriber(self) -> Transcriber:
        sync_torch_threads()  # Whisper runs on torch: once it is loaded, with the configured threads
        return get_transcriber(self.whisper)

    def _temperature(self, key: str) -> float:
        return float((getattr(self.config, "temperatures", None) or {}).get(key, 1.0))

    def _calibrated(self, scores: Scores, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of N rows and their (N, 3) modality mask -> ((N, K) calibrated fused probabilities, no surer than
        the calibrated heads of the modalities in each row together (stresslab.evidence); (N, 3, K) each head's
        calibrated probabilities)."""
        own = np.stack([softmax(scores.modality_logits[m], self._temperature(m)) for m in MODALITIES], 1)
        return bound_by_evidence(softmax(scores.fused_logits, self._temperature("fused")), own, mask), own

    def inputs(self, clip: Clip, windows: list[Window] | None = None) -> TowerInputs:
        """Clip -> TowerInputs through this analyzer's face detector and settings (the training path too)."""
        s = self.settings
        return tower_inputs(clip, self.config, windows, self.detector, s.min_audio_seconds,
                            s.frames_per_window)

    def encode(self, clip: Clip) -> Encoded:
        """Run face finding, the towers and ASR once: Clip -> Encoded (see the class for shapes)."""
        windows = plan_windows(clip.duration, self.settings)
        inputs = self.inputs(clip, windows)
        embedded = embed(inputs, self.backend)
        emb, present, reasons = embedded.emb, embedded.present, dict(inputs.reasons)
        timings = {**inputs.timings, **embedded.timings}
        faces = [dict(f) for f in inputs.faces]
        if embedded.frame_emb is not None:  # what the face branch says for each frame (teaching view)
            per_frame = softmax(self.backend.head("video", embedded.frame_emb), self._temperature("video"))
            for f, p in zip(faces, per_frame, strict=True):
                f["emotion"], f["confidence"] = self.config.emotions[int(p.argmax())], round(float(p.max()), 4)
        segments: list[dict] = []
        transcript, source, reasons["text"] = self._transcript(clip, bool(present[0, 1]), timings, segments)
        if transcript:
            t = time.perf_counter()
            emb["text"][:] = self.backend.embed_text([transcript])[0]
            present[:, 2] = True
            timings["text"] = time.perf_counter() - t
        if not present[0].any():
            raise NothingToAnalyze("nothing to analyse: " + "; ".join(f"{m}: {reasons[m]}" for m in MODALITIES))
        info = {"source": clip.source, "kind": clip.kind, "duration": round(clip.duration, 3), "notes": clip.notes,
                "windows": [[round(s, 3), round(e, 3)] for s, e in windows]}
        return Encoded(emb, present, windows, reasons, transcript, source, segments, faces, info, timings)

    def _transcript(self, clip: Clip, has_speech: bool, timings: dict,
                    segments: list[dict]) -> tuple[str | None, str | None, str | None]:
        if clip.text:
            return clip.text, "typed", None
        if clip.audio is None:
            return None, None, "no words: type what was said, or give a clip with speech"
        if not has_speech:
            return None, None, "no speech to transcribe"
        if not self.settings.transcribe:
            return None, None, "speech recognition is switched off"
        asr = self.transcriber
        if not asr.available:
            return None, None, asr.unavailable_reason
        sync_torch_threads()  # Whisper runs on torch, which it may just have imported
        t = time.perf_counter()
        said = asr.transcribe(clip.audio)
        text = said.text
        segments.extend({"start": round(s, 3), "end": round(e, 3), "text": w} for s, e, w in said.segments if w)
        timings["asr"] = time.perf_counter() - t
        return (text, "whisper", None) if text else (None, None, "no words recognised in the speech")

    def fuse(self, encoded: Encoded, enabled: dict[str, bool] | None = None) -> Analysis:
        """Heads + attention fusion only (no tower runs): Encoded -> Analysis. enabled switches modalities off."""
        backend, names = self.backend, self.config.emotions
        timings = dict(encoded.timings)
        on = np.array([bool((enabled or {}).get(m, True)) for m in MODALITIES])
        mask = encoded.present & on
        if not mask[0].any():
            raise NothingToAnalyze("every available modality is switched off: switch one on")
        t = time.perf_counter()
        rows = [0] + ([w for w in range(1, len(encoded.windows) + 1) if mask[w].any()]
                      if len(encoded.windows) > 1 else [])
        pred = backend.predict({m: encoded.emb[m][rows] for m in MODALITIES}, mask[rows])
        fused, own_rows = self._calibrated(pred, mask[rows])
        timings["fusion"] = time.perf_counter() - t
        probs = _named(fused[0], names)
        learned = float(pred.stress[0]) if pred.stress is not None else None

        modalities = {}
        for j, m in enumerate(MODALITIES):
            own = _named(own_rows[0, j], names) if encoded.present[0, j] else None
            modalities[m] = {
                "present": bool(encoded.present[0, j]), "enabled": bool(on[j]),
                "reason": encoded.reasons[m] if not encoded.present[0, j] else (None if on[j] else "switched off"),
                "weight": round(float(pred.weights[0, j]), 5),
                "emotion": max(own, key=own.get) if own else None, "probabilities": own,
            }

        t = time.perf_counter()
        ablations = {}
        drop = [j for j in range(len(MODALITIES)) if mask[0, j]] if self.settings.ablations and mask[0].sum() > 1 \
            else []
        if drop:
            abl_mask = np.repeat(mask[:1], len(drop), 0)
            for i, j in enumerate(drop):
                abl_mask[i, j] = False
            abl = backend.predict({m: np.repeat(encoded.emb[m][:1], len(drop), 0) for m in MODALITIES}, abl_mask)
            abl_fused, _ = self._calibrated(abl, abl_mask)
            for i, j in enumerate(drop):
                p = _named(abl_fused[i], names)
                ablations[MODALITIES[j]] = {
                    "emotion": max(p, key=p.get), "probabilities": p,
                    "shift": round(0.5 * sum(abs(p[n] - probs[n]) for n in names), 5),
                    "label_changed": max(p, key=p.get) != max(probs, key=probs.get),
                    "stress": _stress(p, float(abl.stress[i]) if abl.stress is not None else None)["score"],
                }
        timings["ablations"] = time.perf_counter() - t

        t = time.perf_counter()
        stress = _stress(probs, learned)
        timeline = self._timeline(encoded, rows, pred, fused, own_rows)
        timings["stress"] = time.perf_counter() - t
        info = {"name": self.config.name, "version": self.config.version, "source": backend.source, **backend.info}
        timings = {k: round(v, 5) for k, v in timings.items()}
        return Analysis(probs, modalities, ablations, stress, timeline, encoded, info, timings,
                        float(getattr(self.config, "not_sure_below", 0.0) or 0.0))

    def _timeline(self, encoded: Encoded, rows: list[int], pred: Scores, fused: np.ndarray,
                  heads: np.ndarray) -> list[dict]:
        """One entry per window row of `rows` (row k of pred, of the (len(rows), K) fused probabilities and of the
        (len(rows), 3, K) heads' probabilities is row rows[k] of encoded): the fused answer, stress, attention, each
        modality present in that window with its own answer, and the words spoken in it."""
        names = self.config.emotions
        timed = encoded.transcript_source == "whisper" and bool(encoded.segments)
        words = words_by_window(encoded.segments, encoded.windows) if timed else None
        timeline = []
        for k, w in enumerate(rows[1:], start=1):
            p = _named(fused[k], names)
            own = {}
            for j, m in enumerate(MODALITIES):
                q = _named(heads[k, j], names) if encoded.present[w, j] else None
                own[m] = {"emotion": max(q, key=q.get), "confidence": max(q.values())} if q else None
            s, e = encoded.windows[w - 1]
            timeline.append({"start": round(s, 3), "end": round(e, 3), "emotion": max(p, key=p.get),
                             "probabilities": p,
                             "stress": _stress(p, float(pred.stress[k]) if pred.stress is not None else None)["score"],
                             "weights": {m: round(float(pred.weights[k, j]), 5) for j, m in enumerate(MODALITIES)},
                             "modalities": own, "words": words[w - 1] if words is not None else None})
        return timeline

    def analyze(self, source: Clip | str | object, text: str | None = None,
                enabled: dict[str, bool] | None = None) -> Analysis:
        """Analyse a clip (a Clip, or anything load_clip accepts); typed text overrides the transcript.
        The caller's Clip is never changed. timings["decode"] covers decoding only (the model is already loaded)."""
        with self._lock:
            return self._analyze(source, text, enabled)

    def _analyze(self, source, text, enabled) -> Analysis:
        t0 = time.perf_counter()
        if isinstance(source, Clip):
            clip = source if text is None else dataclasses.replace(source, text=text.strip() or None)
        else:
            clip = load_clip(source, text=text)
        decode = time.perf_counter() - t0
        encoded = self.encode(clip)
        encoded.timings = {"decode": decode, **encoded.timings}
        result = self.fuse(encoded, enabled)
        result.timings["total"] = round(time.perf_counter() - t0, 5)
        return result

    def warm_up(self) -> float:
        """One tiny analysis of a synthetic clip (grey frames, a voiced tone, a few words) so that librosa's
        first-call compilation, the face detector, the towers (and Whisper when configured) are ready. Seconds."""
        t0 = time.perf_counter()
        t = np.arange(16_000) / 16_000  # a voiced "syllable" between two pauses: speech by either speech rule
        tone = (0.3 * np.sin(2 * np.pi * 180 * t) * ((t > 0.3) & (t < 0.7))).astype(np.float32)
        tone += np.random.default_rng(0).normal(0, 1e-4, tone.size).astype(np.float32)
        frames = np.full((4, 96, 128, 3), 128, np.uint8)
        clip = Clip(frames=frames, frame_times=np.arange(4, dtype=np.float32) / 4, audio=tone, duration=1.0,
                    kind="arrays")
        self.analyze(clip)  # transcribes the tone when Whisper is configured: loads it
        self.analyze(None, text="warming up")
        return time.perf_counter() - t0

    def model_card(self) -> tuple[str | None, Path | None]:
        """Where the model's card can be read: (Hub URL or None, the local README.md or None)."""
        source = str(self.backend.source or "")
        local = Path(source) / "README.md" if source and Path(source).is_dir() else None
        if local is not None and local.is_file():
            return None, local.resolve()
        return (f"https://huggingface.co/{source}" if source else None), None


_ANALYZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=4)
def _named_backend(name: str | None) -> Backend:
    return load_backend(name)


def _analyzer(model: object, settings: AnalysisSettings | None) -> Analyzer:
    if model is None or isinstance(model, str | Path):
        model = _named_backend(None if model is None else str(model))
    if model not in _ANALYZERS:
        _ANALYZERS[model] = Analyzer(model)
    base = _ANALYZERS[model]
    if settings is None or settings == base.settings:
        return base
    other = Analyzer.__new__(Analyzer)  # same model and detector, other settings
    other.__dict__.update(base.__dict__, settings=settings)
    return other


def encode(clip: Clip, model: object, settings: AnalysisSettings | None = None) -> Encoded:
    """Analyzer(model, settings).encode(clip), with the model's detector reused."""
    return _analyzer(model, settings).encode(clip)


def fuse(model: object, encoded: Encoded, enabled: dict[str, bool] | None = None,
         settings: AnalysisSettings | None = None) -> Analysis:
    """Analyzer(model, settings).fuse(encoded, enabled)."""
    return _analyzer(model, settings).fuse(encoded, enabled)


def analyze(source: Clip | str | object, *, text: str | None = None, model: object = None,
            settings: AnalysisSettings | None = None, enabled: dict[str, bool] | None = None) -> Analysis:
    """Analyse a clip (a Clip, or anything load_clip accepts) with a model (default: the bundled one)."""
    return _analyzer(model, settings).analyze(source, text=text, enabled=enabled)
