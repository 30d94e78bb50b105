"""A collection: a named set of clips to label, its source, its owner's consent basis and how it is labelled.

Layout, inside the correction store's folder (STORE, `--store`):
  STORE/collections/<name>/collection.json   the definition (written once, atomically)
  STORE/collections/<name>/records/ media/ tmp/ sync/   the annotations: a FeedbackStore (annotations.py)
  STORE/collections/<name>/prelabels/<clip>.json        the model's answer per clip (prelabel.py)
  STORE/collections/<name>/cache/<clip><ext>            media of a Hub dataset's rows, written on first use

A source is one of:
  {"kind": "folder", "path": ...}    every media file in a folder (not recursive); a clip's id is its file name
                                     without the extension
  {"kind": "dataset", "id", "config", "split", "media_columns", "id_column"}   a Hugging Face dataset (a Hub id or
                                     a local folder `datasets.load_dataset` reads); clip id: the id column, else the
                                     row number
  {"kind": "corrections", "path": ...}   the clips kept in a correction store; clip id: the record id
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..files import MEDIA_KINDS, media_kind, write_atomic

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ORDERS = ("random", "uncertain")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Clip:
    """One clip of a collection: its id and the media file to play and analyse (None until materialised)."""

    id: str
    path: Path | None
    kind: str | None  # "video" | "audio" | "image"


@dataclass
class Collection:
    """A collection's definition (collection.json). labels_per_clip: k, how many annotators label each clip."""

    name: str
    source: dict
    consent: str
    labels_per_clip: int = 3
    order: str = "random"
    seed: int = 0
    created_utc: str = ""
    description: str = ""
    root: Path = field(default=Path("."), repr=False, compare=False)  # STORE/collections/<name>, not saved

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise ValueError(f"collection name {self.name!r}: expected letters, digits, '_', '.', '-' (up to 64)")
        if not isinstance(self.consent, str) or not self.consent.strip():
            raise ValueError("consent: state the consent basis for the media (e.g. 'participants signed form X')")
        k = self.labels_per_clip
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
            raise ValueError(f"labels per clip {k!r}: expected a whole number from 1 to 100")
        if self.order not in ORDERS:
            raise ValueError(f"order {self.order!r}: expected one of {', '.join(ORDERS)}")
        if not isinstance(self.source, dict) or self.source.get("kind") not in ("folder", "dataset", "corrections"):
            raise ValueError("source: expected a folder, a Hugging Face dataset or the correction store")

    # --- storage ------------------------------------------------------------------------------------------------
    @staticmethod
    def folder(store: str | Path, name: str) -> Path:
        return Path(store).absolute() / "collections" / name

    def save(self) -> None:
        """Write collection.json atomically (refuses to overwrite an existing collection)."""
        path = self.root / "collection.json"
        if path.exists():
            raise ValueError(f"a collection named {self.name!r} already exists")
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "root"}
        write_atomic(path, self.root / "tmp", json.dumps(data, indent=2, ensure_ascii=False).encode())

    @classmethod
    def load(cls, store: str | Path, name: str) -> Collection:
        """The collection `name` in the store; ValueError naming the existing ones if there is none."""
        if not NAME.fullmatch(name or ""):
            raise ValueError(f"collection name {name!r}: expected letters, digits, '_', '.', '-'")
        root = cls.folder(store, name)
        path = root / "collection.json"
        if not path.is_file():
            known = ", ".join(list_collections(store)) or "none yet"
            raise ValueError(f"no collection {name!r} in {store} (collections: {known})")
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data, root=root)

    # --- clips ----------------------------------------------------------------------------------------------------
    def clips(self) -> list[Clip]:
        """Every clip of the collection, sorted by id. Dataset rows get their media written to cache/ lazily
        (see media()); their path is None here until then."""
        kind = self.source["kind"]
        if kind == "folder":
            return [Clip(i, p, k) for i, p, k in _folder_clips(Path(self.source["path"]))]
        if kind == "corrections":
            from ..corrections.store import FeedbackStore

            store = FeedbackStore(self.source["path"])
            out = [Clip(r.id, store.media_path(r), r.media_kind) for r in store.records()]
            return sorted((c for c in out if c.path is not None), key=lambda c: c.id)
        ids = _dataset_ids(self)
        cached = {p.stem: p for p in (self.root / "cache").glob("*")} if (self.root / "cache").is_dir() else {}
        return [Clip(i, cached.get(i), media_kind(cached[i]) if i in cached else None) for i in ids]

    def media(self, clip_id: str) -> Clip:
        """The clip with its media file on disk (a dataset row's media is written to cache/ on first use)."""
        for c in self.clips():
            if c.id == clip_id:
                if c.path is None:
                    c.path = _materialise(self, clip_id)
                    c.kind = media_kind(c.path)
                return c
        raise ValueError(f"no clip {clip_id!r} in collection {self.name!r}")


_FOLDERS: dict[Path, tuple[int, list[tuple[str, Path, str]]]] = {}  # folder -> (mtime_ns, its clips)


def _folder_clips(folder: Path) -> list[tuple[str, Path, str]]:
    """(id, path, kind) of the media files in a folder, sorted by id; a clip in two formats counts once (the first
    file by name). Cached until the folder's entries change (its mtime), so a 10,000-clip folder is listed once."""
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        raise ValueError(f"{folder}: the collection's folder is missing") from None
    cached = _FOLDERS.get(folder)
    if cached and cached[0] == stamp:
        return cached[1]
    seen: dict[str, tuple[Path, str]] = {}
    with os.scandir(folder) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            kind = MEDIA_KINDS.get(os.path.splitext(e.name)[1].lower())
            if kind and e.is_file():
                seen.setdefault(os.path.splitext(e.name)[0], (Path(e.path), kind))
    clips = [(i, p, k) for i, (p, k) in sorted(seen.items())]
    _FOLDERS[folder] = (stamp, clips)
    return clips


def list_collections(store: str | Path) -> list[str]:
    """The names of the collections in a store."""
    folder = Path(store) / "collections"
    return sorted(p.name for p in folder.iterdir() if (p / "collection.json").is_file()) if folder.is_dir() else []


def parse_source(spec: str, store: str | Path, *, config: str | None = None, split: str = "train",
                 media_columns: list[str] | None = None, id_column: str | None = None) -> dict:
    """`--from` text -> a source dict: an existing folder; `corrections` or `corrections:PATH` (the store's kept
    clips); otherwise (or with an `hf:` prefix) a Hugging Face dataset id or local dataset folder."""
    if spec == "corrections" or spec.startswith("corrections:"):
        path = spec.partition(":")[2] or str(store)
        return {"kind": "corrections", "path": str(Path(path).absolute())}
    if not spec.startswith("hf:") and Path(spec).is_dir() and any(media_kind(p) for p in Path(spec).iterdir()):
        return {"kind": "folder", "path": str(Path(spec).absolute())}
    dataset = spec.removeprefix("hf:")
    if Path(dataset).exists():
        dataset = str(Path(dataset).absolute())
    return {"kind": "dataset", "id": dataset, "config": config, "split": split,
            "media_columns": media_columns or ["audio"], "id_column": id_column}


def _load_dataset(c: Collection):
    import datasets

    s = c.source
    ds = datasets.load_dataset(s["id"], s.get("config"), split=s.get("split") or "train")
    for col in s["media_columns"]:
        if col not in ds.column_names:
            raise ValueError(f"dataset {s['id']}: no media column {col!r} (columns: {', '.join(ds.column_names)})")
        feature = ds.features[col]
        if hasattr(feature, "decode"):
            ds = ds.cast_column(col, type(feature)(decode=False))
    return ds


def _dataset_ids(c: Collection) -> list[str]:
    ids_file = c.root / "dataset_ids.json"  # the row -> id map, fixed at the first read
    if ids_file.is_file():
        return json.loads(ids_file.read_text())
    ds = _load_dataset(c)
    col = c.source.get("id_column")
    ids = [str(v) for v in ds[col]] if col else [f"{i:06d}" for i in range(len(ds))]
    if len(set(ids)) != len(ids):
        raise ValueError(f"id column {col!r} has repeated values: clip ids must be unique")
    if any(not NAME.fullmatch(i) for i in ids):
        raise ValueError("clip ids must be letters, digits, '_', '.', '-' (up to 64)")
    (c.root / "tmp").mkdir(parents=True, exist_ok=True)
    write_atomic(ids_file, c.root / "tmp", json.dumps(ids).encode())
    return ids


def _materialise(c: Collection, clip_id: str) -> Path:
    """Write a dataset row's first present media column to cache/<clip><ext>."""
    ids = _dataset_ids(c)
    row = _load_dataset(c)[ids.index(clip_id)]
    for col in c.source["media_columns"]:
        value = row[col]
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            suffix = Path(value.get("path") or "").suffix.lower() or ".wav"
            dest = c.root / "cache" / f"{clip_id}{suffix}"
            dest.parent.mkdir(exist_ok=True)
            if value.get("bytes"):
                write_atomic(dest, c.root / "tmp", value["bytes"])
            else:
                write_atomic(dest, c.root / "tmp", source=Path(value["path"]))
            return dest
        if isinstance(value, str) and Path(value).is_file():
            dest = c.root / "cache" / f"{clip_id}{Path(value).suffix.lower()}"
            dest.parent.mkdir(exist_ok=True)
            write_atomic(dest, c.root / "tmp", source=Path(value))
            return dest
    raise ValueError(f"clip {clip_id!r}: no media in columns {', '.join(c.source['media_columns'])}")
