"""What `stresslab finetune` learns from: a SOURCE of corrections -> usable items (tower inputs + label), the
unusable ones counted by reason, and a held-out part (speaker-disjoint where speakers are known).

SOURCE is one of:
  - a correction store folder (records/*.jsonl + media/), or its `stresslab corrections export` copy;
  - a Hugging Face dataset repo id holding a store (downloaded into CACHE/.hub-snapshot);
  - an exported collection (`stresslab collections export`: data/*.parquet + media/), labelled by the majority;
  - a clip folder (metadata.jsonl, e.g. `python -m training.prepare ravdess ...`), whose records name speakers.
Media go through stresslab.inputs.tower_inputs, the one Clip -> tower-inputs path of analysis and training.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from stresslab.labels import EMOTIONS

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
SKIP_REASONS = ("no emotion (none)", "unreadable file", "no usable modality")


@dataclass
class Correction:
    """One correction as read from SOURCE: its media file (None: words only), words, label and speaker."""

    id: str
    media: Path | None
    text: str | None
    emotion: str | None
    stress: int | None = None
    speaker: str | None = None
    soft: list[float] | None = None  # the annotators' distribution over the six emotions, where there is one


@dataclass
class Usable:
    """A correction whose inputs reached at least one tower: inputs = tower_inputs(clip) (the whole clip one
    window), y the emotion id, stress in [0, 1] (-1: not rated)."""

    id: str
    inputs: object
    text: str | None
    y: int
    stress: float
    speaker: str | None
    soft: list[float] | None = None


@dataclass
class Prepared:
    usable: list[Usable]
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    kind: str = ""  # what SOURCE was: store | collection | clip folder

    def reasons(self) -> dict[str, int]:
        """{reason: count} of the skipped corrections, in SKIP_REASONS order."""
        return {r: self.skipped[r] for r in SKIP_REASONS if self.skipped[r]}

    def skipped_line(self) -> str:
        """One line: how many were skipped and why."""
        n = sum(self.skipped.values())
        why = ", ".join(f"{k} {r}" for r, k in self.reasons().items())
        return f"skipped {n} unusable correction{'s' if n != 1 else ''}" + (f" ({why})" if n else "")


def read_source(source: str, cache: Path) -> tuple[list[Correction], Counter, str]:
    """SOURCE (see the module docstring) -> (corrections, unreadable counts, kind). ValueError when it is none of
    the kinds."""
    path = Path(source)
    if not path.exists() and HUB_ID.match(source):
        from stresslab.corrections.store import FeedbackStore

        path = FeedbackStore.from_hub(source, cache / ".hub-snapshot").root
    if (path / "records").is_dir():
        return *_from_store(path), "correction store"
    if any((path / "data").glob("*.parquet")):
        return _from_collection(path), Counter(), "exported collection"
    if (path / "metadata.jsonl").is_file():
        return from_clip_folder(path), Counter(), "clip folder"
    raise ValueError(f"{source}: expected a correction store folder (records/), an exported collection "
                     "(data/*.parquet + media/), a clip folder (metadata.jsonl) or a Hugging Face dataset repo id")


def _from_store(root: Path) -> tuple[list[Correction], Counter]:
    import logging

    from stresslab.corrections import store as store_module
    from stresslab.corrections.store import FeedbackStore

    logging.getLogger(store_module.__name__).setLevel(logging.ERROR)  # counted below instead
    store = FeedbackStore(root)
    out = [Correction(r.id, store.media_path(r), r.transcript, r.emotion, r.stress_rating) for r in store.records()]
    return out, Counter({"unreadable file": len(store.problems)} if store.problems else {})


def _from_collection(root: Path) -> list[Correction]:
    import pyarrow.parquet as pq

    out = []
    for part in sorted((root / "data").glob("*.parquet")):
        for row in pq.read_table(part).to_pylist():
            emotion = row.get("majority") or None
            out.append(Correction(f"collection/{row['clip_id']}", root / row["file"] if row.get("file") else None,
                                  row.get("transcript") or None, emotion if emotion in EMOTIONS else None,
                                  round(row["stress_mean"]) if row.get("stress_mean") else None))
    return out


def from_clip_folder(root: Path) -> list[Correction]:
    """A clip folder's records as corrections (speakers kept)."""
    from training.clip_folder import read_clip_folder

    out = []
    for r in read_clip_folder(root):
        media = r.get("video") or r.get("audio") or r.get("image")
        stress = r.get("stress")
        out.append(Correction(r["id"], Path(media) if media else None, r.get("text"), r.get("emotion"),
                              None if stress is None else round(stress), r.get("speaker"),
                              (r.get("extra") or {}).get("soft_label") or None))
    return out


def prepare(source: str, config, cache: Path, progress: bool = True) -> Prepared:
    """Read SOURCE and turn each correction into tower inputs (config: the model's ModelConfig); the unusable
    ones are counted by reason in Prepared.skipped, never raised."""
    corrections, skipped, kind = read_source(source, cache)
    return Prepared(to_usable(corrections, config, skipped, progress), skipped, kind)


def to_usable(corrections: list[Correction], config, skipped: Counter, progress: bool = True,
              stress_only: bool = False) -> list[Usable]:
    """Each correction through load_clip and tower_inputs; the unusable ones are counted in `skipped` by reason.
    stress_only: a correction with a stress rating but no emotion is usable too (its y is -1)."""
    from tqdm import tqdm

    from stresslab.clip import load_clip
    from stresslab.inputs import tower_inputs
    from stresslab.labels import emotion_id
    from stresslab.towers.video import FaceDetector

    detector, usable = FaceDetector(config.video), []
    for c in tqdm(corrections, desc="prepare", unit="correction", disable=not progress):
        if c.emotion not in EMOTIONS and not (stress_only and c.stress is not None):
            skipped["no emotion (none)"] += 1
            continue
        try:
            if c.media is not None and not c.media.is_file():
                raise FileNotFoundError(c.media)
            clip = load_clip(str(c.media), text=c.text) if c.media is not None else load_clip(text=c.text or None)
            inputs = tower_inputs(clip, config, detector=detector)
        except Exception:  # a file that cannot be decoded, however it fails: counted, never a crash
            skipped["unreadable file"] += 1
            continue
        if inputs.crops is None and not inputs.audio_rows and not clip.text:
            skipped["no usable modality"] += 1
            continue
        stress = (c.stress - 1) / 4 if c.stress is not None else -1.0
        usable.append(Usable(c.id, inputs, clip.text, emotion_id(c.emotion) if c.emotion else -1, stress,
                             c.speaker, c.soft))
    return usable


def _fraction(key: str) -> float:
    import hashlib

    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def held_out(items: list[Usable], fraction: float = 0.2) -> tuple[list[Usable], list[Usable], str]:
    """(train, held out, how): whole speakers held out where every item names one and there are at least 3
    speakers (a stable hash picks them, at least one), else items by a stable hash of their id."""
    speakers = sorted({i.speaker for i in items if i.speaker is not None})
    if len(speakers) >= 3 and all(i.speaker is not None for i in items):
        chosen = {s for s in speakers if _fraction(f"speaker/{s}") < fraction}
        chosen = chosen or {min(speakers, key=lambda s: _fraction(f"speaker/{s}"))}
        how = f"speaker-disjoint: speakers {', '.join(sorted(chosen))} held out"
        return ([i for i in items if i.speaker not in chosen], [i for i in items if i.speaker in chosen], how)
    held = [i for i in items if _fraction(i.id) < fraction]
    return [i for i in items if _fraction(i.id) >= fraction], held, "by record (speakers unknown)"


def counts(items: list[Usable]) -> dict[str, int]:
    """Corrections per emotion, in EMOTIONS order."""
    c = Counter(EMOTIONS[i.y] for i in items if i.y >= 0)
    return {e: c[e] for e in EMOTIONS}


