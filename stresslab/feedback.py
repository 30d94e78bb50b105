"""Corrections: the record format (this module is its only writer) and the local store, the source of truth.

Store layout (a folder):
  records/<id>.jsonl   one record, one JSON line; written to tmp/, fsynced, renamed into place, folder fsynced
  media/<id>/<name>    the kept clip (only with consent), written the same way *before* its record
  tmp/                 half-written files live here only; a crash leaves them, gc() removes them
  sync/                Hub sync ledgers (hub_sync.py)
Durability: os.replace is atomic, so records/ only ever holds whole records, and a record never points at missing
media (media lands first). Any number of threads and processes can add at once: ids are unique (uuid4) and no file
is shared between writers. At any moment `datasets.load_dataset("json", data_files="STORE/records/*.jsonl")` reads
every saved record.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from .labels import EMOTIONS

SCHEMA_VERSION = 1
MEDIA_KINDS = {".mp4": "video", ".webm": "video", ".mov": "video", ".mkv": "video", ".avi": "video", ".flv": "video",
               ".wav": "audio", ".mp3": "audio", ".flac": "audio", ".ogg": "audio", ".m4a": "audio",
               ".jpg": "image", ".jpeg": "image", ".png": "image", ".webp": "image", ".bmp": "image"}


@dataclass
class CorrectionRecord:
    """One correction. emotion None means "none of these"; stress_rating is 1 (calm) .. 5 (very stressed)."""

    emotion: str | None
    stress_rating: int | None = None
    note: str = ""
    transcript: str | None = None
    model_output: dict = field(default_factory=dict)
    consent_keep_media: bool = False
    consent_share: bool = False
    media: str | None = None  # file name under media/<id>/ (only with consent_keep_media)
    media_kind: str | None = None  # video | audio | image
    app_version: str = ""
    model_version: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_utc: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.emotion is not None and self.emotion not in EMOTIONS:
            raise ValueError(f"emotion {self.emotion!r}: expected one of {', '.join(EMOTIONS)} or None (none of them)")
        rating = self.stress_rating
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5):
            raise ValueError(f"stress rating {self.stress_rating!r}: expected a whole number from 1 to 5, or None")
        if self.media is not None and not self.consent_keep_media:
            raise ValueError("media is kept only with consent_keep_media")
        if not isinstance(self.consent_share, bool) or not isinstance(self.consent_keep_media, bool):
            raise ValueError("consent flags must be True or False")
        if not all(c in "0123456789abcdef" for c in self.id) or len(self.id) != 32:
            raise ValueError(f"record id {self.id!r}: expected 32 hex digits")

    @classmethod
    def from_dict(cls, d: dict) -> CorrectionRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FeedbackStore:
    """The local correction store at `root` (created if missing)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for sub in ("records", "media", "tmp", "sync"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_hub(cls, repo_id: str, local_dir: str | Path, token: str | None = None) -> FeedbackStore:
        """A store over a snapshot of a Hub dataset repo that HubSync filled."""
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, repo_type="dataset", local_dir=str(local_dir), token=token,
                          allow_patterns=["records/*", "media/*/*"])
        return cls(local_dir)

    # --- writing ----------------------------------------------------------------------------------------------
    def _write_atomic(self, dest: Path, data: bytes | None = None, source: Path | None = None) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                if source is not None:
                    with open(source, "rb") as src:
                        shutil.copyfileobj(src, f, 1 << 20)
                else:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(dest.parent)

    def add(self, record: CorrectionRecord | None = None, media_path: str | Path | None = None,
            **fields_: object) -> CorrectionRecord:
        """Save a correction durably (media first, with consent only) and return it; its id is the receipt."""
        record = record or CorrectionRecord(**fields_)
        if media_path is not None and record.consent_keep_media:
            src = Path(media_path)
            if not src.is_file():
                raise FileNotFoundError(f"media file {src} not found")
            name = "clip" + src.suffix.lower()
            self._write_atomic(self.root / "media" / record.id / name, source=src)
            record.media, record.media_kind = name, MEDIA_KINDS.get(src.suffix.lower())
        line = json.dumps(asdict(record), ensure_ascii=False, sort_keys=True) + "\n"
        self._write_atomic(self.record_path(record.id), line.encode())
        return record

    def erase(self, record_id: str) -> bool:
        """Remove a record and its media; returns False if there was none. HubSync propagates the deletion."""
        path = self.record_path(record_id)
        if not path.exists():
            return False
        (self.root / "sync" / "erased").mkdir(exist_ok=True)
        (self.root / "sync" / "erased" / record_id).touch()
        path.unlink()
        _fsync_dir(path.parent)
        shutil.rmtree(self.root / "media" / record_id, ignore_errors=True)
        return True

    def gc(self) -> int:
        """Remove what a crash can leave: temp files and media without a record. Returns how many."""
        n = 0
        for p in (self.root / "tmp").iterdir():
            p.unlink(missing_ok=True)
            n += 1
        for d in (self.root / "media").iterdir():
            if not self.record_path(d.name).exists():
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        return n

    # --- reading ----------------------------------------------------------------------------------------------
    def record_path(self, record_id: str) -> Path:
        if not record_id or any(c not in "0123456789abcdef" for c in record_id):
            raise ValueError(f"receipt id {record_id!r}: expected the 32-character id shown when it was saved")
        return self.root / "records" / f"{record_id}.jsonl"

    def get(self, record_id: str) -> CorrectionRecord | None:
        path = self.record_path(record_id)
        return CorrectionRecord.from_dict(json.loads(path.read_text())) if path.exists() else None

    def records(self) -> list[CorrectionRecord]:
        """Every saved record, oldest first."""
        out = [CorrectionRecord.from_dict(json.loads(p.read_text())) for p in (self.root / "records").glob("*.jsonl")]
        return sorted(out, key=lambda r: (r.created_utc, r.id))

    def media_path(self, record: CorrectionRecord) -> Path | None:
        """The kept media file of a record, or None."""
        if not record.media:
            return None
        path = self.root / "media" / record.id / record.media
        return path if path.exists() else None

    def export(self, out_dir: str | Path) -> Path:
        """A copy of records/ and media/ (the dataset layout) in out_dir."""
        out = Path(out_dir)
        for sub in ("records", "media"):
            shutil.copytree(self.root / sub, out / sub, dirs_exist_ok=True)
        return out

    def to_dataset(self):
        """The records as a datasets.Dataset; `media_file` holds the kept media's path (or None)."""
        import datasets

        rows = []
        for r in self.records():
            row = asdict(r)
            row["model_output"] = json.dumps(r.model_output)
            path = self.media_path(r)
            row["media_file"] = str(path) if path else None
            rows.append(row)
        return datasets.Dataset.from_list(rows)
