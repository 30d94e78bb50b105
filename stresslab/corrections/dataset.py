"""The correction store as a data set: export() to the Hub repo's layout (records/*.jsonl, media/<id>/, README.md)
and to_dataset() as a `datasets.Dataset`; dataset_card() is the README.md both carry. Only valid records are
included (the store quarantines the rest) and only media that the store's media_path() accepts."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .record import encode_model_output

if TYPE_CHECKING:
    from .store import FeedbackStore


def export(store: FeedbackStore, out_dir: str | Path) -> Path:
    """Copy the records (byte for byte) and their media to out_dir: `datasets.load_dataset("json",
    data_files=f"{out_dir}/records/*.jsonl")` loads it; a record's media is out_dir/media/<id>/<media>."""
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    for r in store.records():
        media = store.media_path(r)
        if media is not None:
            (out / "media" / r.id).mkdir(parents=True, exist_ok=True)
            shutil.copy2(media, out / "media" / r.id / r.media)
        try:
            shutil.copy2(store.record_path(r.id), out / "records" / f"{r.id}.jsonl")
        except FileNotFoundError:  # erased meanwhile: drop its media too
            shutil.rmtree(out / "media" / r.id, ignore_errors=True)
    (out / "README.md").write_text(dataset_card())
    return out


def to_dataset(store: FeedbackStore, decode: bool = False):
    """The records as a `datasets.Dataset`: the record fields (None where absent, model_output as a JSON string)
    and `video` / `audio` / `image` columns holding the kept media's absolute path. With decode=True those columns
    become Video / Audio / Image features where their decoder is importable."""
    import importlib.util

    import datasets

    feats = {"id": "string", "created_utc": "string", "app_version": "string", "model_version": "string",
             "emotion": "string", "stress_rating": "int32", "note": "string", "transcript": "string",
             "model_output": "string", "media": "string", "media_kind": "string", "consent_keep_media": "bool",
             "consent_share": "bool", "schema_version": "int32", "video": "string", "audio": "string",
             "image": "string"}
    rows = []
    for r in store.records():
        row = {k: v for k, v in dataclasses.asdict(r).items() if k in feats}  # a subclass's extra fields left out
        row |= dict.fromkeys(("video", "audio", "image"))
        row["model_output"] = encode_model_output(r.model_output)
        path = store.media_path(r)
        if path is not None and r.media_kind:
            row[r.media_kind] = str(path)
        rows.append(row)
    ds = datasets.Dataset.from_list(rows, features=datasets.Features({k: datasets.Value(v) for k, v in feats.items()}))
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
license: cc-by-4.0
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

Consent, retention and licence (the app's correction form says the same): a record holds the labels, the note, the
words and the answer shown; the clip only when its author ticked "keep my clip". Records are kept until their
author erases them with the receipt (no expiry). Records whose author ticked "share publicly" are published under
CC BY 4.0 for research; the others stay in a private repository. Emotion recognition must not be used to judge,
screen or monitor people (EU AI Act, art. 5(1)(f) prohibits it at work and in education).
"""
