"""The clip-folder format: its one writer and its readers. Imports neither torch nor the model code.

  OUT/metadata.jsonl   one clip a line, every key of FIELDS present (null when absent); media paths relative to OUT
  OUT/media/<id>.<ext> the clip's media, copied (or symlinked to the source with link=True)
  OUT/README.md        source corpus, licence, attribution, what was dropped, counts per split and emotion

It loads as a Hugging Face dataset: datasets.load_dataset("json", data_files="OUT/metadata.jsonl"), or
load_clip_folder_dataset(OUT). training.readers turn each corpus, in its own layout, into records for the writer.

Durability: a copied medium goes through stresslab.files.write_atomic (temp file, fsync, os.replace, folder
fsync); a symlink is made under a temporary name and renamed into place, and its folder is fsynced. The metadata is
written last, the same atomic way, so a crash leaves the previous metadata.jsonl or the new one, never half of one,
and never a line whose media are not on disk yet.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stresslab.files import fsync_dir, write_atomic
from stresslab.labels import EMOTIONS

if TYPE_CHECKING:
    import datasets

FIELDS = ("id", "video", "audio", "image", "text", "emotion", "stress", "speaker", "corpus", "split", "extra")
MEDIA_KEYS = ("video", "audio", "image")
SPLITS = ("train", "dev", "val", "test")
# Split folder / file names as they occur in the wild -> the split written ("dev" stays "dev", as the source says).
SPLIT_NAMES = {"train": "train", "training": "train", "dev": "dev", "val": "val", "valid": "val",
               "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Corpus:
    """A corpus reader and what the clip folder's README says about its source."""

    read: Callable[[Path], Iterator[dict]]  # source folder -> records whose media keys hold source paths
    title: str
    licence: str
    attribution: str
    dropped: str  # which source labels or rows are dropped, and why


def clip_record(**fields: object) -> dict:
    """A metadata line with every key of FIELDS present (None when not given; `extra` defaults to {})."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown clip fields {sorted(unknown)}; expected some of {', '.join(FIELDS)}")
    rec = dict.fromkeys(FIELDS)
    rec.update(fields)
    rec["extra"] = rec["extra"] or {}
    return rec


# ---------------------------------------------------------------------------------------------------------------
# reading


def read_clip_folder(path: str | Path) -> list[dict]:
    """The records of a clip folder's metadata.jsonl, with media paths made absolute."""
    path = Path(path).resolve()
    meta = path / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{path} is not a clip folder: metadata.jsonl is missing "
                                "(write one with python -m training.prepare)")
    records = []
    with meta.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{meta}:{n}: not a JSON line ({e})") from None
            for key in MEDIA_KEYS:
                if r.get(key):
                    r[key] = str(path / r[key])
            records.append(r)
    return records


def load_clip_folder_dataset(path: str | Path, absolute_paths: bool = True,
                             cache_dir: str | Path | None = None) -> datasets.Dataset:
    """The clip folder as a Hugging Face datasets.Dataset, one row a clip; media stay path strings (absolute,
    or relative to the folder as written when absolute_paths is False)."""
    import datasets

    path = Path(path).resolve()
    if not (path / "metadata.jsonl").is_file():
        raise FileNotFoundError(f"{path} is not a clip folder: metadata.jsonl is missing")
    ds = datasets.load_dataset("json", data_files=str(path / "metadata.jsonl"), split="train",
                               cache_dir=None if cache_dir is None else str(cache_dir))
    if not absolute_paths:
        return ds
    keys = [k for k in MEDIA_KEYS if k in ds.column_names]

    def absolute(batch: dict) -> dict:
        return {k: [None if p is None else str(path / p) for p in batch[k]] for k in keys}

    return ds.map(absolute, batched=True, desc="absolute media paths") if keys else ds


# ---------------------------------------------------------------------------------------------------------------
# writing


def write_clip_folder(records: Iterable[dict], out: str | Path, corpus: str, about: Corpus, source: str = "",
                      link: bool = False) -> list[dict]:
    """Place each record's media under out/media/ and write out/metadata.jsonl (last, atomically) + README.md.

    Media keys of the incoming records are source paths; in the written ones they are relative to `out`.
    """
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    written: list[dict] = []
    seen: set[str] = set()
    folders: set[Path] = set()
    for rec in records:
        _validate(rec, seen)
        placed: dict[Path, str] = {}  # one copy of a file that serves as both video and audio
        for key in MEDIA_KEYS:
            if rec[key] is not None:
                path = Path(rec[key])
                if path not in placed:
                    placed[path] = _place(path, out, rec["id"], link)
                    folders.add((out / placed[path]).parent)
                rec[key] = placed[path]
        written.append(rec)
    if link:  # copies were made durable one by one; the symlinks' renames are, now
        for folder in sorted(folders):
            fsync_dir(folder)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in written)
    write_atomic(out / "metadata.jsonl", out, text.encode("utf-8"))
    write_atomic(out / "README.md", out, _readme(corpus, about, source, written, link).encode("utf-8"))
    return written


def _validate(rec: dict, seen: set[str]) -> None:
    if set(rec) != set(FIELDS):
        raise ValueError(f"record {rec.get('id')!r}: expected exactly the keys {', '.join(FIELDS)}")
    parts = str(rec["id"]).split("/")
    if not rec["id"] or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"clip id {rec['id']!r}: expected corpus/name, usable as a relative path")
    if rec["id"] in seen:
        raise ValueError(f"duplicate clip id {rec['id']!r}: two source files describe the same clip")
    seen.add(rec["id"])
    if rec["emotion"] is not None and rec["emotion"] not in EMOTIONS:
        raise ValueError(f"{rec['id']}: emotion {rec['emotion']!r}, expected one of {', '.join(EMOTIONS)} or None")
    if rec["stress"] is not None and not 1 <= rec["stress"] <= 5:
        raise ValueError(f"{rec['id']}: stress {rec['stress']!r}, expected a rating from 1 to 5 or None")
    if rec["split"] not in (*SPLITS, None):
        raise ValueError(f"{rec['id']}: split {rec['split']!r}, expected one of {', '.join(SPLITS)} or None")


def _place(src: Path, out: Path, clip_id: str, link: bool) -> str:
    """Copy (or symlink) src to out/media/<clip id><suffix>, atomically; returns the path relative to out."""
    if not src.is_file():
        raise ValueError(f"media file {src} not found")
    rel = Path("media", *clip_id.split("/")).with_name(clip_id.split("/")[-1] + src.suffix.lower())
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not link:
        write_atomic(dest, dest.parent, source=src)
        return rel.as_posix()
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(src.resolve())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rel.as_posix()


def _readme(corpus: str, about: Corpus, source: str, records: list[dict], link: bool) -> str:
    counts = Counter((r["split"] or "(none)", r["emotion"] or "(none)") for r in records)
    splits = sorted({s for s, _ in counts}, key=lambda s: (SPLITS + ("(none)",)).index(s))
    columns = [*EMOTIONS, *(["(none)"] if any(r["emotion"] is None for r in records) else [])]
    table = ["| split | " + " | ".join(columns) + " | total |", "| --- " * (len(columns) + 2) + "|"]
    for s in splits:
        row = [counts[(s, e)] for e in columns]
        table.append(f"| {s} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    row = [sum(counts[(s, e)] for s in splits) for e in columns]
    table.append("| all | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    speakers = len({r["speaker"] for r in records if r["speaker"] is not None})
    rated = sum(r["stress"] is not None for r in records)
    media = Counter(k for r in records for k in MEDIA_KEYS if r[k] is not None)
    return "\n".join([
        f"# {about.title}: clip folder", "",
        f"Written by `python -m training.prepare {corpus} {source} OUT{' --link' if link else ''}` from the corpus "
        f"in its own layout; media {'symlinked to the source' if link else 'copied'} under media/.", "",
        f"- Licence: {about.licence}",
        f"- Attribution: {about.attribution}",
        f"- Labels: mapped onto the six emotions ({', '.join(EMOTIONS)}); dropped: {about.dropped}.",
        f"- {len(records)} clips, {speakers} speakers, {rated} with a stress rating; media: "
        + (", ".join(f"{media[k]} {k}" for k in MEDIA_KEYS if media[k]) or "none"), "",
        "Clips per split and emotion:", "", *table, "",
    ])
