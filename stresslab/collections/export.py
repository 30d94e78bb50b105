"""Export a collection as a Hugging Face dataset folder: one row per clip with all its annotations, the majority
label and the soft label distribution, its media, and a dataset card stating the consent basis and the agreement.

    OUT/README.md                       the card (YAML header: data_files; consent basis; agreement figures)
    OUT/data/train-00000.parquet        the rows (schema below); `datasets.load_dataset(OUT)` loads them
    OUT/media/<clip><ext>               the clips (only those with at least one label unless all_clips)
    OUT/stats.json                      agreement.summary() as JSON

Row: clip_id, file ("media/<clip><ext>"), media_kind, n_labels, annotations (list of {id, annotator, answer,
stress, face, voice, words, note, blind, created_utc}), majority ("" without one), soft_label (list over
`classes` = the six emotions + "none", summing to 1, or zeros), stress_mean (0.0 when unrated), stress_ratings,
model_emotion (the prelabel's fused answer, "" without one), transcript (the prelabel's words, "" without one).
Absent values are "" / 0, never null, so every row has one type per field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .agreement import CLASSES, format_summary, majority, soft_label, summary
from .annotations import AnnotationStore
from .collection import Collection
from .prelabel import load_prelabels


def _features():
    import datasets

    text = datasets.Value("string")
    note = {"id": text, "annotator": text, "answer": text, "stress": datasets.Value("int32"), "face": text,
            "voice": text, "words": text, "note": text, "blind": datasets.Value("bool"), "created_utc": text}
    return datasets.Features({
        "clip_id": text, "file": text, "media_kind": text, "n_labels": datasets.Value("int32"),
        "annotations": datasets.List(note), "majority": text,
        "soft_label": datasets.List(datasets.Value("float32")), "stress_mean": datasets.Value("float32"),
        "stress_ratings": datasets.List(datasets.Value("int32")), "model_emotion": text, "transcript": text})


def rows(collection: Collection, all_clips: bool = False) -> tuple[list[dict], dict]:
    """(one row per clip, the agreement summary) from the stored annotations and prelabels."""
    records = AnnotationStore(collection.root).records()
    prelabels = load_prelabels(collection)
    clips = collection.clips()
    ids = {c.id for c in clips}
    records = [r for r in records if r.clip_id in ids]
    stats = summary(records, prelabels, len(clips), collection.labels_per_clip)
    out = []
    for c in clips:
        labels = [r for r in records if r.clip_id == c.id]
        if not labels and not all_clips:
            continue
        if c.path is None:
            c = collection.media(c.id)
        answers = [r.answer for r in labels]
        ratings = [r.stress_rating for r in labels if r.stress_rating]
        out.append({
            "clip_id": c.id, "file": f"media/{c.id}{c.path.suffix.lower()}", "media_kind": c.kind or "",
            "n_labels": len(labels),
            "annotations": [{"id": r.id, "annotator": r.annotator, "answer": r.answer, "stress": r.stress_rating or 0,
                             "face": r.face_emotion or "", "voice": r.voice_emotion or "",
                             "words": r.words_emotion or "", "note": r.note, "blind": r.blind,
                             "created_utc": r.created_utc} for r in labels],
            "majority": majority(answers) or "", "soft_label": soft_label(answers),
            "stress_mean": sum(ratings) / len(ratings) if ratings else 0.0, "stress_ratings": ratings,
            "model_emotion": (prelabels.get(c.id) or {}).get("emotion", ""),
            "transcript": (prelabels.get(c.id) or {}).get("transcript", ""), "_path": c.path})
    return out, stats


def card(collection: Collection, stats: dict, n_rows: int) -> str:
    """README.md of an export: the YAML header `datasets` reads, the consent basis and the agreement figures."""
    consent = collection.consent.strip().replace("\n", "\n> ")
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.parquet
tags:
- emotion
- stress
- annotation
---
# {collection.name}: a StressLab annotation collection

{collection.description.strip() or "Clips labelled by several annotators with the StressLab labelling workspace."}

## Consent basis for the media
Stated by the collection's owner when creating it:

> {consent}

## Labels
{n_rows} clips, each labelled by up to {collection.labels_per_clip} annotators. One row per clip: `annotations`
(every label: the annotator, the answer (one of {", ".join(CLASSES)} or "cant_tell"), stress 1-5 (0 = not rated),
what the face, voice and words show (optional), a note, and whether the model's answer was hidden (`blind`)),
`majority` (the most frequent answer, "" on a tie), `soft_label` (the share of each of {", ".join(CLASSES)}, in
that order; "can't tell" left out), `stress_mean`, `model_emotion` and `transcript` (the model's pre-label), and
`file`, the clip.

## Agreement
```
{format_summary(stats)}
```
Krippendorff's alpha is computed with the `krippendorff` package: nominal over the answers (can't tell = missing),
ordinal over stress ratings. Full figures, the confusion between annotators included, are in `stats.json`.
"""


def export(collection: Collection, out_dir: str | Path, all_clips: bool = False) -> Path:
    """Write the dataset folder (see the module docstring); returns out_dir. Existing exported files are replaced."""
    import datasets

    out = Path(out_dir)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "media").mkdir(exist_ok=True)
    table, stats = rows(collection, all_clips)
    for row in table:
        shutil.copy2(row.pop("_path"), out / row["file"])
    for old in (out / "data").glob("*.parquet"):
        old.unlink()
    ds = datasets.Dataset.from_list(table, features=_features())
    ds.to_parquet(str(out / "data" / "train-00000.parquet"))
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    (out / "README.md").write_text(card(collection, stats, len(table)))
    return out


def push(collection: Collection, repo_id: str, token: str, *, public: bool = False, endpoint: str | None = None,
         out_dir: str | Path | None = None) -> str:
    """Export and upload to a Hub dataset repo, private unless public=True (an existing public repo is refused
    when private was asked). Returns the commit URL."""
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=not public, exist_ok=True)
    if not public and not api.repo_info(repo_id, repo_type="dataset").private:
        raise ValueError(f"{repo_id} is a public repo: pass --public to push there, or name a private one")
    with tempfile.TemporaryDirectory() as tmp:
        folder = export(collection, out_dir or tmp)
        info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                                 commit_message=f"collection {collection.name}: export")
    return str(getattr(info, "commit_url", info))
