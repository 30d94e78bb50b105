"""Annotations: a correction record that also names its annotator, collection and clip, with optional per-modality
emotions, kept in the same durable FeedbackStore (one per collection, at STORE/collections/<name>/).

An AnnotationRecord is a CorrectionRecord (same checks, same one-JSON-line file, same erasure by receipt and Hub
sync) with these fields added; on disk each keeps one type ("" when absent, like the others):
  annotator   who labelled (a name typed in the app, or the Hugging Face login on a Space)
  collection  the collection's name;  clip_id  the clip's id in it
  cant_tell   True when the annotator could not tell (then emotion is None, like "none of these")
  face_emotion, voice_emotion, words_emotion   what the face, the voice and the words show, each optional
  blind       True when the model's answer was hidden from the annotator
A record written before these fields existed still loads (they take their defaults). The store's own reader returns
plain CorrectionRecords; AnnotationStore reads the same files again as AnnotationRecords.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..corrections.store import MAX_RECORD_BYTES, CorrectionRecord, FeedbackStore
from ..labels import EMOTIONS

log = logging.getLogger(__name__)
CANT_TELL = "cant_tell"
NO_EMOTION = "none"  # "none of these", as the correction store writes it
ANSWERS = (*EMOTIONS, NO_EMOTION, CANT_TELL)  # what an annotator can answer for the clip
PER_MODALITY = ("face_emotion", "voice_emotion", "words_emotion")


@dataclass
class AnnotationRecord(CorrectionRecord):
    """One annotator's label for one clip of a collection (see the module docstring for the added fields)."""

    annotator: str = ""
    collection: str = ""
    clip_id: str = ""
    cant_tell: bool = False
    face_emotion: str | None = None
    voice_emotion: str | None = None
    words_emotion: str | None = None
    blind: bool = False

    def __post_init__(self) -> None:
        for name in PER_MODALITY:
            setattr(self, name, getattr(self, name) or None)  # "" on disk
        super().__post_init__()
        for name in ("annotator", "collection", "clip_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise ValueError(f"{name}: expected a non-empty string (up to 200 characters)")
        for name in ("cant_tell", "blind"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False")
        if self.cant_tell and self.emotion is not None:
            raise ValueError("cant_tell: the emotion must be empty when the annotator cannot tell")
        for name in PER_MODALITY:
            value = getattr(self, name)
            if value is not None and value not in EMOTIONS:
                raise ValueError(f"{name} {value!r}: expected one of {', '.join(EMOTIONS)}, or nothing")

    @property
    def answer(self) -> str:
        """The clip-level answer: an emotion, "none" (none of these) or "cant_tell"."""
        return CANT_TELL if self.cant_tell else (self.emotion or NO_EMOTION)

    def to_json_line(self) -> str:
        d = json.loads(super().to_json_line())
        d.update({name: getattr(self, name) or "" for name in PER_MODALITY})
        return json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Any) -> AnnotationRecord:
        return super().from_dict(d)  # type: ignore[return-value]


def annotation(collection: str, clip_id: str, annotator: str, answer: str, *, stress: int | None = None,
               note: str = "", face: str | None = None, voice: str | None = None, words: str | None = None,
               blind: bool = False, model_output: dict | None = None, app_version: str = "") -> AnnotationRecord:
    """The record for one label: answer is an emotion, "none" (none of these) or "cant_tell". ValueError if bad."""
    if answer not in ANSWERS:
        raise ValueError(f"answer {answer!r}: expected one of {', '.join(ANSWERS)}")
    model = (model_output or {}).get("model") or {}
    return AnnotationRecord(
        emotion=answer if answer in EMOTIONS else None, cant_tell=answer == CANT_TELL, stress_rating=stress,
        note=(note or "").strip(), model_output=model_output or {}, annotator=(annotator or "").strip(),
        collection=collection, clip_id=clip_id, face_emotion=face or None, voice_emotion=voice or None,
        words_emotion=words or None, blind=bool(blind), app_version=app_version,
        model_version=str(model.get("version", "")) if isinstance(model, dict) else "")


class AlreadyLabelled(ValueError):
    """The annotator has labelled this clip before (the queue never gives a clip twice to one annotator)."""


_PARSED: dict[Path, dict[str, tuple[tuple[int, int, int], AnnotationRecord]]] = {}  # per store: file -> record


class AnnotationStore:
    """The annotations of one collection: a FeedbackStore at the collection's folder, read as AnnotationRecords."""

    def __init__(self, root: str | Path):
        self.store = FeedbackStore(root)
        self.root = self.store.root

    def _lock(self, annotator: str) -> FileLock:
        (self.root / "locks").mkdir(exist_ok=True)
        name = hashlib.sha256(annotator.encode()).hexdigest()[:24]
        return FileLock(str(self.root / "locks" / f"{name}.lock"), timeout=60)

    def add(self, record: AnnotationRecord) -> AnnotationRecord:
        """Save durably (FeedbackStore.add: atomic, fsynced; any number of processes at once) and return it; its
        id is the receipt. AlreadyLabelled if this annotator already labelled this clip (checked under a per-
        annotator file lock, so two tabs of one person cannot both save)."""
        if not isinstance(record, AnnotationRecord):
            raise TypeError("expected an AnnotationRecord (annotation() builds one)")
        with self._lock(record.annotator):
            if any(r.clip_id == record.clip_id for r in self.records(annotator=record.annotator)):
                raise AlreadyLabelled(f"{record.annotator} has already labelled clip {record.clip_id}")
            return self.store.add(record)  # type: ignore[return-value]

    def records(self, annotator: str | None = None) -> list[AnnotationRecord]:
        """Every valid annotation, oldest first (optionally one annotator's); a file erased meanwhile is skipped.
        One pass over records/ reads the regular files that parse as annotations; if any file does not, the
        store's own reader runs (it moves bad files to quarantine/ and logs them) and the rest are read again."""
        out, odd = [], False
        parsed = _PARSED.setdefault(self.root, {})
        seen = set()
        with os.scandir(self.root / "records") as entries:
            for e in entries:
                if not e.name.endswith(".jsonl"):
                    continue
                try:
                    info = e.stat(follow_symlinks=False)
                    key = (info.st_ino, info.st_size, info.st_mtime_ns)
                    if e.name in parsed and parsed[e.name][0] == key:  # parsed before and unchanged since
                        a = parsed[e.name][1]
                    elif not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                        odd = True
                        continue
                    else:
                        with open(e.path, "rb") as f:
                            a = AnnotationRecord.from_dict(json.loads(f.read().decode("utf-8")))
                        if a.id != e.name.removesuffix(".jsonl"):
                            odd = True
                            continue
                        parsed[e.name] = (key, a)
                except FileNotFoundError:
                    continue
                except (ValueError, TypeError, RecursionError, OSError):
                    odd = True
                    continue
                seen.add(e.name)
                if annotator is None or a.annotator == annotator:
                    out.append(a)
        for gone in set(parsed) - seen:
            del parsed[gone]
        if odd:
            self.store.records()  # quarantines what is not a valid record (and says so once)
            return self._records_slow(annotator)
        return sorted(out, key=lambda r: (r.created_utc, r.id))

    def _records_slow(self, annotator: str | None) -> list[AnnotationRecord]:
        out = []
        for r in self.store.records():
            try:
                a = AnnotationRecord.from_dict(json.loads(self.store.record_path(r.id).read_bytes().decode("utf-8")))
            except FileNotFoundError:
                continue
            except (ValueError, TypeError) as e:  # a valid correction, not an annotation: left where it is
                log.warning("record %s is not an annotation (%s); left out", r.id, e)
                continue
            if annotator is None or a.annotator == annotator:
                out.append(a)
        return out

    def erase(self, receipt: str) -> bool:
        """Erase one annotation by receipt id (the Hub copy goes at the next push)."""
        return self.store.erase(receipt)


def as_dict(record: AnnotationRecord) -> dict:
    """A JSON-ready dict of an annotation (answer included)."""
    return dataclasses.asdict(record) | {"answer": record.answer}
