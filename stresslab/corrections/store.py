"""Corrections: the record format (this module is its only writer) and the local store, the source of truth.

Store layout (a folder; the same layout is the Hub dataset repo that hub_sync.py fills):
  records/<id>.jsonl      one record, one JSON line
  media/<id>/clip.<ext>   the kept clip, only with consent_keep_media
  tmp/                    files being written; nothing else ever reads here
  sync/                   Hub sync state (hub_sync.py): ledgers, erasure markers
Durability: every file is written in tmp/, fsynced, renamed into place with os.replace (atomic) and its folder
fsynced, so records/ only ever holds whole records, and media lands before its record, so a record never points at
missing media. Writers share no file (ids are uuid4), so any number of threads and processes can add at once.
A crash can leave only tmp/ files and media without a record; gc() removes them.

One record a file makes the store crash-safe, but `datasets` infers the column types from the first file it reads
and casts the others to them, so a null there (or a nested dict of another shape) breaks loading. Each line
therefore keeps one type per field: "none" for no emotion, 0 for no stress rating, "" for no text or media, and
model_output as a JSON string. CorrectionRecord speaks None; only the JSON line uses these encodings, so
`datasets.load_dataset("json", data_files="STORE/records/*.jsonl")` reads every saved record at any moment.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import MEDIA_KINDS, fsync_dir, write_atomic
from ..labels import EMOTIONS

SCHEMA_VERSION = 2  # 1: nullable fields and model_output as an object (still read)
_ID = re.compile(r"[0-9a-f]{32}")
_MEDIA = re.compile(r"clip(\.[a-z0-9]{1,8})?")  # the kept file's name, in media/<id>/
NO_EMOTION = "none"  # on disk: "none of these"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


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
    created_utc: str = field(default_factory=_now)
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
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise ValueError(f"record id {self.id!r}: expected 32 lowercase hex digits (uuid4().hex)")
        for name in ("note", "app_version", "model_version"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}: expected a string")
        if self.transcript is not None and not isinstance(self.transcript, str):
            raise ValueError("transcript: expected a string or None")
        if not isinstance(self.model_output, dict):
            raise ValueError("model_output: expected a dict (the analysis JSON as shown)")
        try:
            json.dumps(self.model_output, default=_jsonable)
        except (TypeError, ValueError) as e:
            raise ValueError(f"model_output: expected JSON-serialisable values ({e})") from None
        if self.media is not None:
            if not isinstance(self.media, str) or not _MEDIA.fullmatch(self.media):
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
                 model_output=json.dumps(self.model_output, default=_jsonable, ensure_ascii=False, sort_keys=True),
                 schema_version=SCHEMA_VERSION)
        return json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> CorrectionRecord:
        """A record from its stored JSON object (this schema or version 1); unknown keys are ignored."""
        d = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}}
        if d.get("emotion") == NO_EMOTION:
            d["emotion"] = None
        if d.get("stress_rating") == 0:
            d["stress_rating"] = None
        if isinstance(d.get("model_output"), str):
            d["model_output"] = json.loads(d["model_output"] or "{}")
        return cls(**d)


class FeedbackStore:
    """The local correction store at `root` (created if missing). See the module docstring for the layout."""

    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()
        missing = [self.root / sub for sub in ("records", "media", "tmp", "sync") if not (self.root / sub).is_dir()]
        for d in missing:
            d.mkdir(parents=True, exist_ok=True)
        if missing:
            fsync_dir(self.root)

    @classmethod
    def from_hub(cls, repo_id: str, local_dir: str | Path, token: str | None = None,
                 endpoint: str | None = None) -> FeedbackStore:
        """A store over a snapshot of a Hub dataset repo that HubSync fills (records erased there leave local_dir)."""
        from huggingface_hub import HfApi, snapshot_download

        snapshot_download(repo_id, repo_type="dataset", local_dir=str(local_dir), token=token, endpoint=endpoint,
                          allow_patterns=["records/*.jsonl", "media/*", "README.md"])
        held = set(HfApi(endpoint=endpoint, token=token).list_repo_files(repo_id, repo_type="dataset"))
        store = cls(local_dir)
        for p in (store.root / "records").glob("*.jsonl"):  # an earlier snapshot's records, since erased
            if f"records/{p.name}" not in held:
                p.unlink()
        for d in (store.root / "media").iterdir():
            if not any(f.startswith(f"media/{d.name}/") for f in held):
                shutil.rmtree(d, ignore_errors=True)
        return store

    # --- writing ----------------------------------------------------------------------------------------------
    def add(self, record: CorrectionRecord | None = None, media_path: str | Path | None = None,
            **fields: Any) -> CorrectionRecord:
        """Save a correction durably and return it (its id is the receipt): add(record) or add(emotion=..., ...).

        The media file is copied into the store only with consent_keep_media, before the record is written."""
        if record is not None and fields:
            raise TypeError("pass a CorrectionRecord or its fields, not both")
        record = CorrectionRecord(**fields) if record is None else record
        kind_hint = record.media_kind  # for a file whose suffix says nothing
        record = dataclasses.replace(record, media=None, media_kind=None)  # set below when the media is kept
        dest = self.record_path(record.id)
        if dest.exists():
            raise ValueError(f"a record with id {record.id} already exists")
        if media_path is not None and record.consent_keep_media:
            src = Path(media_path)
            if not src.is_file():
                raise FileNotFoundError(f"media file {src} not found")
            suffix = src.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,8}", src.suffix.lower()) else ""
            folder = self.root / "media" / record.id
            folder.mkdir(exist_ok=True)
            fsync_dir(folder.parent)
            write_atomic(folder / f"clip{suffix}", self.root / "tmp", source=src)
            record = dataclasses.replace(record, media=f"clip{suffix}",
                                         media_kind=MEDIA_KINDS.get(suffix, kind_hint))
        write_atomic(dest, self.root / "tmp", record.to_json_line().encode())
        return record

    def erase(self, record_id: str) -> bool:
        """Remove a record and its media; False if there was none. HubSync propagates the deletion to the Hub."""
        path, media = self.record_path(record_id), self.root / "media" / record_id
        if not path.exists() and not media.exists():
            return False
        erased = self.root / "sync" / "erased"
        if not erased.is_dir():
            erased.mkdir(exist_ok=True)
            fsync_dir(erased.parent)
        write_atomic(erased / record_id, self.root / "tmp", _now().encode())  # first: a crash still propagates
        existed = path.exists()
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        shutil.rmtree(media, ignore_errors=True)
        fsync_dir(media.parent)
        return existed

    def gc(self, min_age_s: float = 3600.0) -> int:
        """Remove what a crash leaves (temp files, media without a record) once older than min_age_s, so that
        writes in progress are left alone. Returns how many entries were removed."""
        cutoff, n = time.time() - min_age_s, 0
        for p in (self.root / "tmp").iterdir():
            if p.stat().st_mtime <= cutoff:
                p.unlink(missing_ok=True)
                n += 1
        for d in (self.root / "media").iterdir():
            if d.stat().st_mtime <= cutoff and not self.record_path(d.name).exists():
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        return n

    # --- reading ----------------------------------------------------------------------------------------------
    def record_path(self, record_id: str) -> Path:
        """records/<id>.jsonl; raises ValueError for anything that is not a receipt id."""
        if not isinstance(record_id, str) or not _ID.fullmatch(record_id):
            raise ValueError(f"receipt id {record_id!r}: expected the 32-character id shown when it was saved")
        return self.root / "records" / f"{record_id}.jsonl"

    def _read(self, path: Path) -> CorrectionRecord | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:  # erased meanwhile
            return None
        try:
            return CorrectionRecord.from_dict(json.loads(text))
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path} is not a correction record: {e}") from None

    def get(self, record_id: str) -> CorrectionRecord | None:
        """The record with this receipt id, or None."""
        return self._read(self.record_path(record_id))

    def records(self) -> list[CorrectionRecord]:
        """Every saved record, oldest first."""
        out = [r for p in (self.root / "records").glob("*.jsonl") if (r := self._read(p)) is not None]
        return sorted(out, key=lambda r: (r.created_utc, r.id))

    def media_path(self, record: CorrectionRecord) -> Path | None:
        """The absolute path of a record's kept media, or None."""
        path = self.root / "media" / record.id / record.media if record.media else None
        return path if path is not None and path.is_file() else None

    def export(self, out_dir: str | Path) -> Path:
        """Copy the records (byte for byte) and their media to out_dir, the layout of the Hub repo:
        `datasets.load_dataset("json", data_files=f"{out_dir}/records/*.jsonl")` loads it; a record's media is
        out_dir/media/<id>/<media>."""
        out = Path(out_dir)
        (out / "records").mkdir(parents=True, exist_ok=True)
        for r in self.records():
            media = self.media_path(r)
            if media is not None:
                (out / "media" / r.id).mkdir(parents=True, exist_ok=True)
                shutil.copy2(media, out / "media" / r.id / r.media)
            try:
                shutil.copy2(self.record_path(r.id), out / "records" / f"{r.id}.jsonl")
            except FileNotFoundError:  # erased meanwhile: drop its media too
                shutil.rmtree(out / "media" / r.id, ignore_errors=True)
        (out / "README.md").write_text(dataset_card())
        return out

    def to_dataset(self, decode: bool = False):
        """The records as a `datasets.Dataset`: the record fields (None where absent, model_output as a JSON
        string) and `video` / `audio` / `image` columns holding the kept media's absolute path. With decode=True
        those columns become Video / Audio / Image features where their decoder is importable."""
        import importlib.util

        import datasets

        feats = {"id": "string", "created_utc": "string", "app_version": "string", "model_version": "string",
                 "emotion": "string", "stress_rating": "int32", "note": "string", "transcript": "string",
                 "model_output": "string", "media": "string", "media_kind": "string", "consent_keep_media": "bool",
                 "consent_share": "bool", "schema_version": "int32", "video": "string", "audio": "string",
                 "image": "string"}
        rows = []
        for r in self.records():
            row = dataclasses.asdict(r) | dict.fromkeys(("video", "audio", "image"))
            row["model_output"] = json.dumps(r.model_output, default=_jsonable, ensure_ascii=False, sort_keys=True)
            path = self.media_path(r)
            if path is not None and r.media_kind:
                row[r.media_kind] = str(path)
            rows.append(row)
        ds = datasets.Dataset.from_list(rows, features=datasets.Features(
            {k: datasets.Value(v) for k, v in feats.items()}))
        if decode:
            decoders = {"video": ("torchcodec", datasets.Video), "audio": ("torchcodec", datasets.Audio),
                        "image": ("PIL", datasets.Image)}
            for column, (module, feature) in decoders.items():
                if importlib.util.find_spec(module) is not None:
                    ds = ds.cast_column(column, feature())
        return ds


def dataset_card() -> str:
    """README.md of an exported store or a Hub repo: tells `datasets` and the Hub viewer to read records/."""
    return """---
configs:
- config_name: default
  data_files: records/*.jsonl
---
# StressLab corrections

Corrections that users of the StressLab app made to its emotion and stress answers, with their consent.
One JSON line a record (`records/<id>.jsonl`): `emotion` (one of anger, disgust, fear, happy, neutral, sad, or
"none" for none of these), `stress_rating` (1 calm .. 5 very stressed, 0 not rated), `transcript`, `model_output`
(the analysis shown, a JSON string), `note`, consent flags, versions and time. `media` names the kept clip, at
`media/<id>/<media>`, only when its author consented to keep it ("" otherwise).
Erasing a record (with its receipt) deletes its files here too.
"""
