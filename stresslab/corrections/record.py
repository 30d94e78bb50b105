"""A correction record: its fields and checks, its one JSON line on disk, and correction_record(), the one place a
record is assembled from an analysis (the app and `stresslab corrections add` both call it).

On disk each line keeps one type per field, because `datasets` infers the column types from the first file it
reads and casts the others to them (a null there, or a nested dict of another shape, breaks loading): "none" for no
emotion, 0 for no stress rating, "" for no text or media, and model_output as a JSON string written by
encode_model_output(). CorrectionRecord speaks None; only the JSON line uses these encodings.

Privacy: correction_record() keeps no path or file name of the clip analysed in the stored model output. Only when
the clip itself is kept (consent) does the record name it, and then by its stored copy's name (e.g. "clip.mp4").
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..labels import EMOTIONS

SCHEMA_VERSION = 2  # 1: nullable fields and model_output as an object (still read)
ID = re.compile(r"[0-9a-f]{32}")
MEDIA_NAME = re.compile(r"clip(\.[a-z0-9]{1,8})?")  # the kept file's name, in media/<id>/
NO_EMOTION = "none"  # on disk: "none of these"


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def encode_model_output(output: dict) -> str:
    """The stored form of a record's model output: one JSON string (sorted keys, numpy values as lists). The record
    line, to_dataset() and training.prepare all write it with this."""
    return json.dumps(output, default=_jsonable, ensure_ascii=False, sort_keys=True)


def kept_name(media_path: str | Path) -> str:
    """The name a kept clip gets in media/<id>/: "clip" plus its suffix (lower case) when that is a plain one."""
    suffix = Path(media_path).suffix.lower()
    return f"clip{suffix}" if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else "clip"


def receipt_id(text: str) -> str:
    """A receipt as typed (any letter case, surrounding spaces or backticks) -> the record id; ValueError if it is
    not one."""
    rid = text.strip().strip("`").strip().lower() if isinstance(text, str) else text
    if not isinstance(rid, str) or not ID.fullmatch(rid):
        raise ValueError(f"receipt id {text!r}: expected the 32-character id shown when it was saved")
    return rid


@dataclass
class CorrectionRecord:
    """One correction. emotion None: "none of these"; stress_rating 1 (calm) .. 5 (very stressed) or None;
    media: the kept file's name in media/<id>/ (only with consent_keep_media), e.g. "clip.mp4", or None."""

    emotion: str | None
    stress_rating: int | None = None
    note: str = ""
    transcript: str | None = None
    model_output: dict = field(default_factory=dict)
    consent_keep_media: bool = False
    consent_share: bool = False
    media: str | None = None
    media_kind: str | None = None
    app_version: str = ""
    model_version: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_utc: str = field(default_factory=now_utc)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.transcript = self.transcript or None  # "" on disk
        self.media, self.media_kind = self.media or None, self.media_kind or None
        if self.emotion is not None and self.emotion not in EMOTIONS:
            raise ValueError(f"emotion {self.emotion!r}: expected one of {', '.join(EMOTIONS)}, or None (none of them)")
        r = self.stress_rating
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 5):
            raise ValueError(f"stress rating {r!r}: expected a whole number from 1 to 5, or None")
        if not isinstance(self.consent_keep_media, bool) or not isinstance(self.consent_share, bool):
            raise ValueError("consent_keep_media and consent_share: expected True or False")
        if not isinstance(self.id, str) or not ID.fullmatch(self.id):
            raise ValueError(f"record id {self.id!r}: expected 32 lowercase hex digits (uuid4().hex)")
        for name in ("note", "app_version", "model_version"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}: expected a string")
        if self.transcript is not None and not isinstance(self.transcript, str):
            raise ValueError("transcript: expected a string or None")
        if not isinstance(self.model_output, dict):
            raise ValueError("model_output: expected a dict (the analysis JSON as shown)")
        try:
            encode_model_output(self.model_output)
        except (TypeError, ValueError) as e:
            raise ValueError(f"model_output: expected JSON-serialisable values ({e})") from None
        if self.media is not None:
            if not isinstance(self.media, str) or not MEDIA_NAME.fullmatch(self.media):
                raise ValueError(f"media {self.media!r}: expected clip.<ext> (its name in media/<id>/), or None")
            if not self.consent_keep_media:
                raise ValueError("media is kept only with consent_keep_media")
        if self.media_kind not in (None, "video", "audio", "image"):
            raise ValueError(f"media_kind {self.media_kind!r}: expected video, audio, image or None")
        try:
            ok = isinstance(self.created_utc, str) and self.created_utc.endswith("Z")
            ok = ok and datetime.fromisoformat(self.created_utc).tzinfo is not None
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"created_utc {self.created_utc!r}: expected ISO 8601 UTC, e.g. 2025-01-31T12:00:00Z")
        if isinstance(self.schema_version, bool) or not isinstance(self.schema_version, int):
            raise ValueError("schema_version: expected an integer")

    def to_json_line(self) -> str:
        """The record as stored: one JSON line with one type per field (see the module docstring)."""
        d = dataclasses.asdict(self)
        d.update(emotion=self.emotion or NO_EMOTION, stress_rating=self.stress_rating or 0,
                 transcript=self.transcript or "", media=self.media or "", media_kind=self.media_kind or "",
                 model_output=encode_model_output(self.model_output), schema_version=SCHEMA_VERSION)
        return json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Any) -> CorrectionRecord:
        """A record from its stored JSON object (this schema or version 1); unknown keys are ignored. Raises
        ValueError for anything that is not a valid record (not an object, a missing field, a bad value)."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # once, not once per key
        d = {k: v for k, v in d.items() if k in names}
        if "emotion" not in d:
            raise ValueError("no emotion field")
        if d["emotion"] == NO_EMOTION:
            d["emotion"] = None
        if d.get("stress_rating") == 0:
            d["stress_rating"] = None
        if isinstance(d.get("model_output"), str):
            d["model_output"] = json.loads(d["model_output"] or "{}")
        return cls(**d)


def correction_record(result: dict | None, emotion: str | None, *, stress_rating: int | None = None,
                      note: str = "", transcript: str | None = None, keep_media: bool = False, share: bool = False,
                      media_path: str | Path | None = None, app_version: str = "") -> CorrectionRecord:
    """The record for a correction of `result` (an analysis as Analysis.to_dict() gives it, or None): the right
    emotion (None or "none": none of these), an optional 1-5 stress rating, a note, and the consents.

    keep_media holds only with a media_path (the clip analysed); then `FeedbackStore.add(record, media_path)` keeps
    a copy. The stored model output names no server path or upload file name: the clip's source becomes the kept
    copy's name, or is left out, and any other mention of the file's path or name is blanked. transcript defaults
    to the result's. Raises ValueError for an invalid correction."""
    keep = bool(keep_media) and media_path is not None
    output = json.loads(encode_model_output(result or {}))  # a deep copy: the caller's dict stays as it was
    if not isinstance(output, dict):
        raise ValueError("result: expected the analysis as a dict (Analysis.to_dict())")
    stored = kept_name(media_path) if keep else None
    clip = output.get("clip")
    mentions = _mentions(media_path)
    if isinstance(clip, dict):
        source = clip.pop("source", None)
        clip.pop("name", None)
        mentions += _mentions(source) if isinstance(source, str) else []
    output = _blank(output, mentions, stored or "")
    if isinstance(clip, dict) and stored:
        output["clip"]["source"] = stored
    model = output.get("model")
    if isinstance(model, dict) and isinstance(model.get("source"), str):
        model["source"] = _model_source(model["source"])
    if transcript is None:
        words = output.get("transcript")
        transcript = words.get("text") if isinstance(words, dict) else None
    return CorrectionRecord(
        emotion=None if emotion in (None, NO_EMOTION) else emotion, stress_rating=stress_rating,
        note=(note or "").strip(), transcript=transcript or None, model_output=output, consent_keep_media=keep,
        consent_share=bool(share), app_version=app_version,
        model_version=str(model.get("version", "")) if isinstance(model, dict) else "")


def _mentions(path: str | Path | None) -> list[str]:
    """The strings that would reveal a file: its path as given, its absolute path and its name."""
    if not path:
        return []
    p = Path(path)
    return [m for m in {str(path), str(p.absolute()), p.name} if m]


def _blank(value: Any, mentions: list[str], replacement: str) -> Any:
    """value with every string that mentions the file replaced, recursively through dicts and lists. A string
    mentions it when it contains the file's path or its name (a name under 5 characters only when equal to it, so
    that a short name does not blank ordinary words)."""
    if isinstance(value, dict):
        return {k: _blank(v, mentions, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v, mentions, replacement) for v in value]
    if isinstance(value, str) and any(m == value or (len(m) >= 5 and m in value) for m in mentions):
        return replacement
    return value


def _model_source(source: str) -> str:
    """A model's source as stored: a Hub id as it is, a local folder by its name only (no server path)."""
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not Path(source).is_absolute():
        return source
    return Path(source).name
