"""Which records train, validate and test: speaker-disjoint splits, stable hold-outs, class-balanced samples.

Imports neither torch nor the model code (training.clip_folder reads the records; training.features turns them
into tower inputs; training.pools draws the later stages' pairings from those).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from stresslab.labels import EMOTIONS, emotion_id

# Our speaker-disjoint splits (speaker ids as training.prepare writes them).
# EmoDB: 8 speakers here (15 and 16 are held aside by the project): validation (early stopping, model choice)
# 09 (f) + 10 (m), test (reported only) 03 (m) + 08 (f), training the other four (11 m, 12 m, 13 f, 14 f).
# CREMA-D sample: actor 1002 (f, audio only) validates, actor 1001 (m, video) trains; no test actor.
# RAVDESS: 18 actors here (13-18 are held aside by the project): 05 (m) + 06 (f) validate, the other 16 train; no
# test actor of its own yet (the held-aside actors, or cross-validation over these 18, measure it).
DEFAULT_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "emodb": {"val": ("09", "10"), "test": ("03", "08")},
    "cremad": {"val": ("1002",), "test": ()},
    "ravdess": {"val": ("05", "06"), "test": ()},
}
# A source split -> the part speaker_split puts it in.
SOURCE_SPLITS = {"train": "train", "dev": "val", "val": "val", "valid": "val", "validation": "val", "test": "test"}


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


def default_split(records: Iterable[dict], corpus: str) -> dict[str, list[dict]]:
    """speaker_split with the corpus's DEFAULT_SPLITS speakers."""
    if corpus not in DEFAULT_SPLITS:
        raise ValueError(f"no default speaker split for {corpus!r}; expected one of {', '.join(DEFAULT_SPLITS)}")
    sp = DEFAULT_SPLITS[corpus]
    return speaker_split(records, sp["val"], sp["test"])


def holdout(records: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """Split records by a stable hash of their id: (the rest, the held-out fraction)."""
    rest, held = [], []
    for r in records:
        (held if _hash_fraction(r["id"]) < fraction else rest).append(r)
    return rest, held


def labels_of(records: list[dict]) -> np.ndarray:
    """The emotion ids of records (each must have an emotion)."""
    return np.array([emotion_id(r["emotion"]) for r in records], dtype=np.int64)


def balanced_indices(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most `cap` random indices of each class (all of a smaller class), shuffled."""
    keep = []
    for c in range(len(EMOTIONS)):
        idx = np.flatnonzero(y == c)
        keep.append(rng.choice(idx, min(cap, len(idx)), replace=False) if len(idx) else idx)
    out = np.concatenate(keep)
    rng.shuffle(out)
    return out
