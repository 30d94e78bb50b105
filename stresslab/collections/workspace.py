"""The labelling workspace of one collection, as the app's "Label a collection" tab uses it (stresslab.Workspace):
the next clip for an annotator, the stored pre-label to show, saving a label, progress and the agreement summary.
Reads only stored results: no model is loaded here (prelabel.py computes them in batch)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .agreement import format_summary, summary
from .annotations import ANSWERS, AnnotationRecord, AnnotationStore, annotation
from .collection import Clip, Collection, list_collections
from .prelabel import folder as prelabel_folder
from .prelabel import load_prelabels
from .queue import Progress, next_clips, progress

__all__ = ["ANSWERS", "Workspace"]


class Workspace:
    """Workspace(store, name): one collection of the correction store at `store` (see collection.py's layout)."""

    answers = ANSWERS

    def __init__(self, store: str | Path, name: str):
        self.collection = Collection.load(store, name)
        self.annotations = AnnotationStore(self.collection.root)
        self._prelabels: tuple[int, dict[str, dict]] | None = None

    @staticmethod
    def names(store: str | Path) -> list[str]:
        """The collections in a store."""
        return list_collections(store)

    @property
    def name(self) -> str:
        return self.collection.name

    def clip_ids(self) -> list[str]:
        return [c.id for c in self.collection.clips()]

    def prelabels(self) -> dict[str, dict]:
        """Every stored pre-label (re-read only when the prelabels/ folder changed)."""
        d = prelabel_folder(self.collection)
        stamp = d.stat().st_mtime_ns if d.is_dir() else 0
        if self._prelabels is None or self._prelabels[0] != stamp:
            self._prelabels = (stamp, load_prelabels(self.collection))
        return self._prelabels[1]

    def prelabel(self, clip_id: str) -> dict | None:
        """The model's stored answer for one clip, or None when it was not pre-labelled."""
        path = prelabel_folder(self.collection) / f"{clip_id}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def next_clip(self, annotator: str, skipped: Iterable[str] = ()) -> str | None:
        """The clip this annotator labels next (None when none is left for them)."""
        c = self.collection
        queue = next_clips(self.clip_ids(), self.annotations.records(), annotator, c.labels_per_clip, c.order,
                           c.seed, self.prelabels() if c.order == "uncertain" else {}, skipped)
        return queue[0] if queue else None

    def clip(self, clip_id: str) -> Clip:
        """The clip with its media file on disk."""
        return self.collection.media(clip_id)

    def save(self, clip_id: str, annotator: str, answer: str, *, stress: int | None = None, note: str = "",
             face: str | None = None, voice: str | None = None, words: str | None = None,
             blind: bool = False, app_version: str = "") -> AnnotationRecord:
        """Save one label durably; returns the record (its id is the receipt). ValueError for a bad label,
        AlreadyLabelled (a ValueError) when this annotator labelled the clip before."""
        if clip_id not in set(self.clip_ids()):
            raise ValueError(f"no clip {clip_id!r} in collection {self.name!r}")
        record = annotation(self.name, clip_id, annotator, answer, stress=stress, note=note, face=face, voice=voice,
                            words=words, blind=blind, model_output=self.prelabel(clip_id) or {},
                            app_version=app_version)
        return self.annotations.add(record)

    def progress(self, annotator: str | None = None) -> Progress:
        return progress(self.clip_ids(), self.annotations.records(), self.collection.labels_per_clip, annotator)

    def stats(self) -> dict:
        """agreement.summary() of the collection."""
        ids = set(self.clip_ids())
        records = [r for r in self.annotations.records() if r.clip_id in ids]
        return summary(records, self.prelabels(), len(ids), self.collection.labels_per_clip)

    @staticmethod
    def stats_text(stats: dict) -> str:
        return format_summary(stats)

    def erase(self, receipt: str) -> bool:
        return self.annotations.erase(receipt)
