"""The local correction store, the source of truth: durable writes, erasure by receipt, quarantine of bad files.

Store layout (a folder; the same layout is the Hub dataset repo that hub_sync.py fills):
  records/<id>.jsonl      one record, one JSON line (record.py: the format)
  media/<id>/clip.<ext>   the kept clip, only with consent_keep_media
  tmp/                    files being written; nothing else ever reads here
  sync/                   Hub sync state (hub_sync.py): ledgers, erasure markers
  quarantine/             record files that are not valid records, moved aside (never deleted) when read
Durability: every file is written in tmp/, fsynced, renamed into place with os.replace (atomic) and its folder
fsynced, so records/ only ever holds whole records, and media lands before its record, so a record never points at
missing media. A write that fails (a full disk) removes the media it had written. Writers share no file (ids are
uuid4), so any number of threads and processes can add at once. A crash can leave only tmp/ files and media
without a record; gc() removes them, and FeedbackStore.open() runs it at start.

Reading never stops at a bad file: records() returns every valid record and moves any other file in records/ (not
JSON, not UTF-8, not an object, an unknown emotion, media outside media/<id>/, a folder, a link) to quarantine/,
logs one warning naming them, and lists them in `problems`. A kept clip is read only as a regular file inside the
store, and only a regular file that decodes as media (clip.probe) is kept.
`datasets.load_dataset("json", data_files="STORE/records/*.jsonl")` reads every saved record at any moment.
(Over 300 lines: writing, erasing, cleaning up and reading share the durability and quarantine rules above.)
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import fsync_dir, media_kind, printable, shown, write_atomic
from .record import ID, CorrectionRecord, kept_name, now_utc, receipt_id

__all__ = ["CorrectionRecord", "FeedbackStore", "Problem"]

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 16 << 20  # a record is a few kB; anything this large is not one


@dataclass(frozen=True)
class Problem:
    """A file in records/ that is not a valid record: `id` is its name without .jsonl (the record id when it is
    named like one), `reason` one line, `moved_to` where it now lies (None if it could not be moved)."""

    id: str
    reason: str
    moved_to: Path | None


class FeedbackStore:
    """The local correction store at `root` (created if missing). See the module docstring for the layout.
    A long-lived process (the app) opens it with FeedbackStore.open(root), which also cleans up after crashes."""

    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()
        self.problems: list[Problem] = []  # bad record files this object found and quarantined
        missing = [self.root / sub for sub in ("records", "media", "tmp", "sync") if not (self.root / sub).is_dir()]
        for d in missing:
            d.mkdir(parents=True, exist_ok=True)
        if missing:
            fsync_dir(self.root)

    @classmethod
    def open(cls, root: str | Path, gc_age_s: float = 600.0) -> FeedbackStore:
        """The store at root, ready for a long-lived process: runs gc(gc_age_s) (what crashes and full disks left)
        and reads every record once, so bad files are quarantined and reported (`problems`, one log warning) now."""
        store = cls(root)
        removed = store.gc(min_age_s=gc_age_s)
        if removed:
            log.info("removed %d leftover(s) of interrupted writes from %s", removed, store.root)
        store.records()
        return store

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
                _remove(p)
        for d in (store.root / "media").iterdir():
            if not any(f.startswith(f"media/{d.name}/") for f in held):
                _remove(d)
        return store

    # --- writing ----------------------------------------------------------------------------------------------
    def add(self, record: CorrectionRecord | None = None, media_path: str | Path | None = None,
            **fields: Any) -> CorrectionRecord:
        """Save a correction durably and return it (its id is the receipt): add(record) or add(emotion=..., ...).

        With consent_keep_media, media_path is copied into the store before the record is written: only a regular
        file (not a link) with a media suffix that decodes as media (ValueError otherwise, and nothing is saved).
        If writing fails (OSError, e.g. a full disk), the media written for it is removed again."""
        if record is not None and fields:
            raise TypeError("pass a CorrectionRecord or its fields, not both")
        record = CorrectionRecord(**fields) if record is None else record
        record = dataclasses.replace(record, media=None, media_kind=None)  # set below when the media is kept
        dest = self.record_path(record.id)
        if dest.exists():
            raise ValueError(f"a record with id {record.id} already exists")
        folder = self.root / "media" / record.id
        try:
            if media_path is not None and record.consent_keep_media:
                record = self._keep(record, Path(media_path), folder)
            write_atomic(dest, self.root / "tmp", record.to_json_line().encode())
        except BaseException:
            if folder.exists() and not dest.exists():
                _remove(folder)
            raise
        return record

    def replace(self, record_id: str, record: CorrectionRecord,
                media_path: str | Path | None = None) -> CorrectionRecord:
        """Save `record` in place of the saved record `record_id` (a second save of one correction) and return it:
        the same id, so the receipt stays valid, and the first save's created_utc; the clip is kept (media_path, as
        in add) or dropped as the new record's consent says. HubSync sends the new version, and removes from the
        Hub what it no longer holds or shares. ValueError if there is no such record."""
        old = self.get(record_id)
        if old is None:
            raise ValueError(f"no record {receipt_id(record_id)} to update (erased?)")
        record = dataclasses.replace(record, id=old.id, created_utc=old.created_utc, media=None, media_kind=None)
        dest, folder = self.record_path(old.id), self.root / "media" / old.id
        had_folder = folder.exists()
        self._mark("updated", f"{old.id}__{time.time_ns():020d}")  # first: a crash still propagates
        try:
            if media_path is not None and record.consent_keep_media:
                record = self._keep(record, Path(media_path), folder)
            write_atomic(dest, self.root / "tmp", record.to_json_line().encode())
        except BaseException:
            if record.media and record.media != old.media:
                _remove(folder / record.media)
            if not had_folder:
                _remove(folder)
            raise
        for f in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else []:
            if f.name != record.media:  # the clip the record no longer names
                _remove(f)
        if record.media is None:
            _remove(folder)
        return record

    def _mark(self, kind: str, name: str) -> None:
        """A durable marker sync/<kind>/<name> for HubSync (an erasure or an update to propagate)."""
        folder = self.root / "sync" / kind
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            fsync_dir(folder.parent)
        write_atomic(folder / name, self.root / "tmp", now_utc().encode())

    def _keep(self, record: CorrectionRecord, src: Path, folder: Path) -> CorrectionRecord:
        """Copy src to media/<id>/clip.<ext> (refusing links, non-regular files and non-media); the record naming it."""
        from ..clip import ClipError, ClipLimits, probe

        if media_kind(src) is None:
            raise ValueError(f"{shown(src)}: not kept, nothing saved: only a video, audio or image file is kept")
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, f"media file {shown(src)} not found") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise ValueError(f"{shown(src)}: a symbolic link, not kept (nothing saved): only a regular media "
                                 "file is kept") from None
            raise
        kinds: list[str] = []
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{shown(src)}: not a regular file, not kept (nothing saved)")
            if info.st_size > ClipLimits().max_bytes:
                raise ValueError(f"{shown(src)}: {info.st_size / 2**20:.0f} MB, over the clip size limit; not kept")

            def check(copy: Path) -> None:
                try:
                    kinds.append(probe(copy, name=src.name))
                except ClipError as e:
                    raise ValueError(f"not kept, nothing saved: {e}") from None

            folder.mkdir(exist_ok=True)
            fsync_dir(folder.parent)
            name = kept_name(src)
            write_atomic(folder / name, self.root / "tmp", source=f, check=check)
        return dataclasses.replace(record, media=name, media_kind=kinds[0])

    def erase(self, record_id: str) -> bool:
        """Remove a record (valid or quarantined) and its media by receipt id (any letter case); False if there was
        none. HubSync propagates the deletion to the Hub."""
        rid = receipt_id(record_id)
        path, media = self.record_path(rid), self.root / "media" / rid
        quarantined = list((self.root / "quarantine").glob(f"{rid}.jsonl*"))
        if not path.exists() and not media.exists() and not quarantined:
            return False
        self._mark("erased", rid)  # first: a crash still propagates
        existed = path.exists() or bool(quarantined)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
        for q in quarantined:
            _remove(q)
        _remove(media)
        return existed

    def gc(self, min_age_s: float = 3600.0) -> int:
        """Remove what a crash leaves (temp files, media without a record) once older than min_age_s, so that
        writes in progress are left alone. Returns how many entries were removed."""
        cutoff, n = time.time() - min_age_s, 0
        for p in (self.root / "tmp").iterdir():
            if p.lstat().st_mtime <= cutoff:
                _remove(p)
                n += 1
        for d in (self.root / "media").iterdir():
            orphan = not ID.fullmatch(d.name) or not self.record_path(d.name).exists()
            if orphan and d.lstat().st_mtime <= cutoff:
                _remove(d)
                n += 1
        return n

    # --- reading ----------------------------------------------------------------------------------------------
    def record_path(self, record_id: str) -> Path:
        """records/<id>.jsonl (the id in any letter case); raises ValueError for anything that is not a receipt id."""
        return self.root / "records" / f"{receipt_id(record_id)}.jsonl"

    def _read(self, path: Path) -> CorrectionRecord | None:
        """The record in path; None when it is gone (erased meanwhile) or bad (then moved to quarantine/)."""
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file")
            if info.st_size > MAX_RECORD_BYTES:
                raise ValueError(f"{info.st_size} bytes, too large for a record")
            with open(path, "rb") as f:
                record = CorrectionRecord.from_dict(json.loads(f.read().decode("utf-8")))
            if record.id != path.stem:
                raise ValueError(f"it holds the record {record.id}")
            return record
        except FileNotFoundError:  # erased meanwhile
            return None
        except (ValueError, TypeError, OSError, RecursionError) as e:  # RecursionError: absurdly nested JSON
            self._quarantine(path, printable(str(e).splitlines()[0] if str(e) else type(e).__name__))
            return None

    def _quarantine(self, path: Path, reason: str) -> None:
        folder = self.root / "quarantine"
        folder.mkdir(exist_ok=True)
        dest = folder / path.name
        if dest.exists() or dest.is_symlink():
            dest = folder / f"{path.name}.{time.time_ns()}"
        try:
            os.replace(path, dest)
            fsync_dir(folder)
            fsync_dir(path.parent)
        except FileNotFoundError:  # another reader moved it first (and reports it)
            return
        except OSError as e:
            log.error("cannot move the bad record file %s to quarantine/: %s", shown(path), e.strerror)
            dest = None
        self.problems.append(Problem(printable(path.name.removesuffix(".jsonl")), reason, dest))

    def quarantined(self) -> list[str]:
        """The names of the files in quarantine/ (bad record files moved aside, kept for a person to look at)."""
        folder = self.root / "quarantine"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def get(self, record_id: str) -> CorrectionRecord | None:
        """The record with this receipt id (any letter case), or None."""
        return self._read(self.record_path(record_id))

    def records(self) -> list[CorrectionRecord]:
        """Every valid saved record, oldest first. Bad files are moved to quarantine/, named in one log warning and
        added to `problems`; the others still read (training's feedback reader iterates these)."""
        before = len(self.problems)
        out = [r for p in (self.root / "records").glob("*.jsonl") if (r := self._read(p)) is not None]
        if len(self.problems) > before:
            log.warning("%s", self.problem_line(self.problems[before:]))
        return sorted(out, key=lambda r: (r.created_utc, r.id))

    def problem_line(self, problems: list[Problem] | None = None) -> str:
        """One line naming the bad record files (default: all this object found), for a log or a CLI."""
        problems = self.problems if problems is None else problems
        named = "; ".join(f"{p.id} ({p.reason})" for p in problems)
        return (f"{len(problems)} bad record file(s) in {self.root / 'records'} moved to quarantine/, the other "
                f"records are unaffected: {named}")

    def media_path(self, record: CorrectionRecord) -> Path | None:
        """The absolute path of a record's kept media, or None. Only a regular file (not a link) in the store's
        media/<id>/ folder counts."""
        if not record.media:
            return None
        folder = self.root / "media" / record.id
        path = folder / record.media
        try:
            if not stat.S_ISDIR(folder.lstat().st_mode) or not stat.S_ISREG(path.lstat().st_mode):
                return None
        except FileNotFoundError:
            return None
        return path

    def export(self, out_dir: str | Path) -> Path:
        """Copy the valid records (byte for byte) and their media to out_dir, the layout of the Hub repo, which
        `datasets.load_dataset("json", data_files=f"{out_dir}/records/*.jsonl")` loads (see dataset.py)."""
        from .dataset import export

        return export(self, out_dir)

    def to_dataset(self, decode: bool = False):
        """The valid records as a `datasets.Dataset` with video/audio/image columns (see dataset.py)."""
        from .dataset import to_dataset

        return to_dataset(self, decode)


def _remove(path: Path) -> None:
    """Delete a file, link or folder tree (whatever is there; nothing if it is gone) and make it durable."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        fsync_dir(path.parent)
    except OSError as e:
        log.error("cannot remove %s: %s", shown(path), e.strerror)
