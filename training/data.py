"""Clip folders as records and as a Hugging Face dataset, speaker-disjoint splits, and the cached per-modality
inputs that training uses.

Readers (read_clip_folder, load_clip_folder_dataset, speaker_split, DEFAULT_SPLITS) import neither torch nor the
model code. The input builders below them (face_arrays, audio_arrays) go through the product's own code
(stresslab.load_clip, audio_features, face crops), so what the model learns from is what it sees at run time;
caches (runs/cache/*.npz) make the second run fast. Torch datasets/loaders over these go below them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stresslab.labels import EMOTIONS, emotion_id

if TYPE_CHECKING:
    import datasets

    from stresslab.towers.audio import AudioConfig
    from stresslab.towers.video import VideoConfig

MEDIA_KEYS = ("video", "audio", "image")

# Our speaker-disjoint splits (speaker ids as training.prepare writes them).
# EmoDB: 8 speakers here (15 and 16 are held aside by the project): validation (early stopping, model choice)
# 09 (f) + 10 (m), test (reported only) 03 (m) + 08 (f), training the other four (11 m, 12 m, 13 f, 14 f).
# CREMA-D sample: actor 1002 (f, audio only) validates, actor 1001 (m, video) trains; no test actor.
DEFAULT_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "emodb": {"val": ("09", "10"), "test": ("03", "08")},
    "cremad": {"val": ("1002",), "test": ()},
}
# A source split -> the part speaker_split puts it in.
SOURCE_SPLITS = {"train": "train", "dev": "val", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def read_clip_folder(path: str | Path) -> list[dict]:
    """The records of a clip folder's metadata.jsonl, with media paths made absolute."""
    path = Path(path).resolve()
    meta = path / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{path} is not a clip folder: metadata.jsonl is missing "
                                "(write one with python -m training.prepare)")
    records = []
    with meta.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{meta}:{n}: not a JSON line ({e})") from None
            for key in MEDIA_KEYS:
                if r.get(key):
                    r[key] = str(path / r[key])
            records.append(r)
    return records


def load_clip_folder_dataset(path: str | Path, absolute_paths: bool = True,
                             cache_dir: str | Path | None = None) -> datasets.Dataset:
    """The clip folder as a Hugging Face datasets.Dataset, one row a clip; media stay path strings (absolute,
    or relative to the folder as written when absolute_paths is False)."""
    import datasets

    path = Path(path).resolve()
    if not (path / "metadata.jsonl").is_file():
        raise FileNotFoundError(f"{path} is not a clip folder: metadata.jsonl is missing")
    ds = datasets.load_dataset("json", data_files=str(path / "metadata.jsonl"), split="train",
                               cache_dir=None if cache_dir is None else str(cache_dir))
    if not absolute_paths:
        return ds
    keys = [k for k in MEDIA_KEYS if k in ds.column_names]

    def absolute(batch: dict) -> dict:
        return {k: [None if p is None else str(path / p) for p in batch[k]] for k in keys}

    return ds.map(absolute, batched=True, desc="absolute media paths") if keys else ds


def _hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from a string (the same on every machine and run, unlike hash())."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def speaker_split(records: Iterable[dict], val_speakers: Iterable[str], test_speakers: Iterable[str] = (),
                  val_fraction: float = 0.1) -> dict[str, list[dict]]:
    """{"train", "val", "test"}: records with a speaker go by speaker (val_speakers -> val, test_speakers ->
    test, any other -> train), so no speaker is in two parts; records without one keep their own split (a source
    "dev" counts as "val"), or, with none, go to val for a stable hash of their id below val_fraction."""
    val, test = {str(s) for s in val_speakers}, {str(s) for s in test_speakers}
    if val & test:
        raise ValueError(f"speakers {sorted(val & test)} are both validation and test speakers")
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for r in records:
        if r.get("speaker") is not None:
            s = str(r["speaker"])
            part = "val" if s in val else "test" if s in test else "train"
        elif r.get("split") is not None:
            if r["split"] not in SOURCE_SPLITS:
                raise ValueError(f"{r.get('id')}: split {r['split']!r}, expected one of {', '.join(SOURCE_SPLITS)}")
            part = SOURCE_SPLITS[r["split"]]
        else:
            part = "val" if _hash_fraction(str(r["id"])) < val_fraction else "train"
        out[part].append(r)
    return out


# ----------------------------------------------------------------------------------------------------------------
# training inputs (numpy, cached); torch datasets and loaders over them belong below


def holdout(records: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """Split records by a stable hash of their id: (the rest, the held-out fraction)."""
    rest, held = [], []
    for r in records:
        (held if _hash_fraction(r["id"]) < fraction else rest).append(r)
    return rest, held


def labels_of(records: list[dict]) -> np.ndarray:
    """The emotion ids of records (each must have an emotion)."""
    return np.array([emotion_id(r["emotion"]) for r in records], dtype=np.int64)


def _cached(name: str, cache: Path | None, build):
    if cache is not None and (cache / f"{name}.npz").exists():
        with np.load(cache / f"{name}.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    data = build()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{name}.npz", **data)
    return data


def face_arrays(records: list[dict], config: VideoConfig, name: str, cache: Path | None = None) -> dict:
    """{"x": (N, S, S) uint8 gray face crops, "y": (N,)}: images, or for videos the middle frame's face."""

    def build():
        import cv2

        from stresslab.clip import load_clip
        from stresslab.towers.video import FaceDetector, crop_face

        detector, xs, ys = FaceDetector(config), [], []
        for r in records:
            clip = load_clip(r.get("image") or r["video"])
            mid = clip.frames[len(clip.frames) // 2]
            box = detector.detect(mid)
            if box is None:
                continue
            xs.append(crop_face(cv2.cvtColor(mid, cv2.COLOR_RGB2GRAY), box, config))
            ys.append(emotion_id(r["emotion"]))
        return {"x": np.stack(xs), "y": np.array(ys, dtype=np.int64)}

    return _cached(f"faces-{name}-{config.image_size}", cache, build)


def audio_arrays(records: list[dict], config: AudioConfig, name: str, cache: Path | None = None,
                 speeds: tuple[float, ...] = (1.0,)) -> dict:
    """{"feats": (sum T, F) float32, "offsets": (N + 1,), "y": (N,), "speaker": (N,)}: audio_features of each clip
    (and of speed-perturbed copies for each factor != 1: a standard augmentation for small speech corpora)."""

    def build():
        import librosa

        from stresslab.clip import load_clip
        from stresslab.towers.audio import audio_features

        feats, offsets, ys, speakers = [], [0], [], []
        for r in records:
            wave = load_clip(r["audio"]).audio
            for speed in speeds:
                w = wave if speed == 1.0 else librosa.resample(wave, orig_sr=16000 * speed, target_sr=16000)
                f = audio_features(w, config)
                feats.append(f)
                offsets.append(offsets[-1] + len(f))
                ys.append(emotion_id(r["emotion"]))
                speakers.append(r.get("speaker") or "")
        return {"feats": np.concatenate(feats), "offsets": np.array(offsets), "y": np.array(ys, dtype=np.int64),
                "speaker": np.array(speakers)}

    tag = "-".join(f"{s:g}" for s in speeds)
    return _cached(f"audio-{name}-{tag}", cache, build)


def split_features(data: dict) -> list[np.ndarray]:
    """The (T_i, F) feature arrays of audio_arrays' concatenation."""
    o = data["offsets"]
    return [data["feats"][o[i]: o[i + 1]] for i in range(len(o) - 1)]


def balanced_indices(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` random indices of each class (all of a smaller class), shuffled."""
    keep = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, min(cap, len(idx)), replace=False) if len(idx) else idx)
    out = np.concatenate(keep)
    rng.shuffle(out)
    return out
