"""Clip folders as records, speaker-disjoint splits, and the cached per-modality inputs that training uses.

Every input goes through the product's own code (stresslab.load_clip, audio_features, face crops), so what the
model learns from is what it sees at run time. Caches (runs/cache/*.npz) make the second run fast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from stresslab.audio import AudioConfig, audio_features
from stresslab.clip import load_clip
from stresslab.labels import EMOTIONS, emotion_id
from stresslab.video import FaceDetector, VideoConfig, crop_face

# Our speaker-disjoint splits. EmoDB: 8 speakers here (15 and 16 are held aside by the project); validation
# (early stopping) 09 (f) + 10 (m), test (reported only) 03 (m) + 08 (f), training the other four.
DEFAULT_SPLITS = {
    "emodb": {"val": ("09", "10"), "test": ("03", "08")},
    "cremad": {"val": ("1002",), "test": ()},
}


def read_clip_folder(path: str | Path) -> list[dict]:
    """metadata.jsonl of a clip folder, with media paths made absolute."""
    path = Path(path)
    meta = path / "metadata.jsonl"
    if not meta.exists():
        raise FileNotFoundError(f"{path} is not a clip folder: metadata.jsonl is missing "
                                "(write one with python -m training.prepare)")
    records = []
    for line in meta.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            for key in ("video", "audio", "image"):
                if r.get(key):
                    r[key] = str(path / r[key])
            records.append(r)
    return records


def load_clip_folder_dataset(path: str | Path):
    """The clip folder as a Hugging Face datasets.Dataset (media as path strings relative to the folder)."""
    import datasets

    return datasets.load_dataset("json", data_files=str(Path(path) / "metadata.jsonl"), split="train")


def _hash_fraction(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def speaker_split(records: list[dict], val_speakers=(), test_speakers=(), val_fraction: float = 0.1) -> dict:
    """{"train", "val", "test"} lists: by speaker when the record has one (disjoint by construction), else by the
    record's own split ("dev"/"valid" count as "val"), else by a stable hash of its id."""
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for r in records:
        if r.get("speaker") is not None and (val_speakers or test_speakers):
            s = r["speaker"]
            part = "val" if s in val_speakers else "test" if s in test_speakers else "train"
        elif r.get("split"):
            part = {"dev": "val", "valid": "val"}.get(r["split"], r["split"])
        else:
            part = "val" if _hash_fraction(r["id"]) < val_fraction else "train"
        out.setdefault(part, []).append(r)
    return out


def holdout(records: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """Split records by a stable hash of their id: (the rest, the held-out fraction)."""
    rest, held = [], []
    for r in records:
        (held if _hash_fraction(r["id"]) < fraction else rest).append(r)
    return rest, held


def labels_of(records: list[dict]) -> np.ndarray:
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
        detector, xs, ys = FaceDetector(config), [], []
        for r in records:
            clip = load_clip(r.get("image") or r["video"])
            mid = clip.frames[len(clip.frames) // 2]
            box = detector.detect(mid)
            if box is None:
                continue
            import cv2

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
