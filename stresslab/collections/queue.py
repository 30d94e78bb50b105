"""Which clip an annotator labels next: clips that still need labels, never one this annotator already labelled.

Order (per collection): "random" is a fixed shuffle (the collection's seed), the same for every annotator, so k
annotators converge on the same clips and finish them; "uncertain" puts first the clips the model is least sure of:
the fused distribution's entropy plus how much the modalities disagree (prelabel.py stores both). Clips without a
stored prelabel come after the pre-labelled ones, in random order. Among equals, a clip with more labels already
comes first, so clips get finished.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .annotations import AnnotationRecord


@dataclass(frozen=True)
class Progress:
    """labelled: clips with k labels (of total); labels: every saved label; mine: clips this annotator labelled."""

    total: int
    labelled: int
    labels: int
    mine: int
    needed: int  # labels still needed for every clip to have k

    def line(self, annotator: str | None = None) -> str:
        own = f"; {annotator}: {self.mine} labelled" if annotator else ""
        return f"{self.labelled} of {self.total} clips fully labelled ({self.labels} labels){own}"


def _random_key(seed: int, clip_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def uncertainty(prelabel: Mapping | None) -> float | None:
    """A prelabel's uncertainty: entropy of the fused distribution (nats, / log 6) + modality disagreement (0..1)."""
    if not prelabel:
        return None
    return float(prelabel.get("entropy", 0.0)) / math.log(6) + float(prelabel.get("disagreement", 0.0))


def counts(records: Iterable[AnnotationRecord]) -> dict[str, set[str]]:
    """clip id -> the annotators who labelled it."""
    out: dict[str, set[str]] = {}
    for r in records:
        out.setdefault(r.clip_id, set()).add(r.annotator)
    return out


def order(clip_ids: list[str], how: str, seed: int, prelabels: Mapping[str, Mapping]) -> list[str]:
    """clip ids in serving order ("random" or "uncertain")."""
    if how == "uncertain":
        def key(c: str) -> tuple:
            u = uncertainty(prelabels.get(c))
            return (u is None, -(u or 0.0), _random_key(seed, c))
        return sorted(clip_ids, key=key)
    return sorted(clip_ids, key=lambda c: _random_key(seed, c))


def next_clips(clip_ids: list[str], records: list[AnnotationRecord], annotator: str, k: int, how: str = "random",
               seed: int = 0, prelabels: Mapping[str, Mapping] | None = None,
               skipped: Iterable[str] = ()) -> list[str]:
    """The clips this annotator may label, best first: fewer than k labels, not labelled by them, not skipped
    (skipped clips come back only when nothing else is left)."""
    done = counts(records)
    skipped = set(skipped)
    base = order(clip_ids, how, seed, prelabels or {})
    rank = {c: i for i, c in enumerate(base)}
    open_ = [c for c in base if len(done.get(c, ())) < k and annotator not in done.get(c, set())]
    # finish clips in progress first among clips at the same place in the order group
    open_.sort(key=lambda c: (c in skipped, -min(len(done.get(c, ())), k - 1) if how == "random" else 0, rank[c]))
    return open_


def progress(clip_ids: list[str], records: list[AnnotationRecord], k: int, annotator: str | None = None) -> Progress:
    """Overall and per-annotator progress."""
    done = counts(records)
    ids = set(clip_ids)
    labelled = sum(1 for c in ids if len(done.get(c, ())) >= k)
    labels = sum(1 for r in records if r.clip_id in ids)
    mine = sum(1 for c in ids if annotator in done.get(c, set())) if annotator else 0
    needed = sum(max(0, k - len(done.get(c, ()))) for c in ids)
    return Progress(len(ids), labelled, labels, mine, needed)
