"""Evaluate a checkpoint on a clip folder through the product's own path (load_clip -> encode -> fuse).

    python -m training.evaluate --model DIR --data CLIP_FOLDER [--modality video|audio|text|fused] [--split S]
                                [--speakers corpus] [--limit N] --json

Prints one JSON document: n, accuracy, uar (unweighted average recall), macro_f1, per-class recall, the confusion
matrix (rows true, columns predicted, in EMOTIONS order), expected calibration error, per-speaker figures, per-group
figures for each demographic key in the records' `extra` (CREMA-D sex/age/race/ethnicity, EmoDB sex), and for
`fused` the accuracy with each modality dropped (ablation). `--modality audio` scores the audio tower's own head on
the clip's audio alone; a still image is a one-frame video. `--split` picks records by their split, or, with
`--speakers CORPUS`, by our speaker-disjoint split of that corpus (training.data.DEFAULT_SPLITS).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import numpy as np
import torch

from stresslab import MODALITIES, ClipError, encode, fuse, load_clip
from stresslab.labels import EMOTIONS, emotion_id
from stresslab.model import StressModel
from stresslab.runtime import Backend, load_model
from training import data as D
from training.clip_folder import read_clip_folder
from training.metrics import classification_report

GROUP_KEYS = ("sex", "age", "race", "ethnicity")


def select_records(folder: str, split: str | None, speakers: str | None) -> list[dict]:
    """The labelled records of a clip folder: all, those of a split, or with `speakers` (a corpus of
    training.data.DEFAULT_SPLITS) that part (default "test") of its speaker-disjoint split."""
    records = [r for r in read_clip_folder(folder) if r.get("emotion")]
    if speakers:
        return D.default_split(records, speakers).get(split or "test", [])
    if split:
        return [r for r in records if r.get("split") == split]
    return records


def clip_for(record: dict, modality: str):
    """The record's clip, restricted to one modality unless modality == 'fused'."""
    media = record.get("video") or record.get("image") or record.get("audio")
    if modality == "text" or media is None:
        return load_clip(text=record.get("text"))
    clip = load_clip(media, text=record.get("text") if modality == "fused" else None)
    if modality == "audio":
        clip.frames = clip.frame_times = None
        if clip.audio is None and record.get("audio"):
            clip.audio = load_clip(record["audio"]).audio
    if modality == "video":
        clip.audio = None
    return clip


def age_group(age: str) -> str:
    a = int(age)
    return "<30" if a < 30 else "30-49" if a < 50 else "50+"


@torch.inference_mode()
def evaluate(model: StressModel | Backend, records: list[dict], modality: str = "fused",
             progress: bool = False) -> dict:
    """Metrics of `modality` ('fused' or one of MODALITIES) over the records; skipped clips are counted. model: a
    StressModel or any Backend (an exported folder on onnxruntime: `stresslab.runtime.load_model`)."""
    y_true, probs, kept, skipped, ablations = [], [], [], [], defaultdict(list)
    it = records
    if progress:
        from tqdm import tqdm

        it = tqdm(records, desc=f"evaluate {modality}", unit="clip", file=sys.stderr)
    for r in it:
        try:
            enc = encode(clip_for(r, modality), model)
        except ClipError as e:
            skipped.append({"id": r["id"], "reason": str(e)})
            continue
        result = fuse(model, enc)
        if modality == "fused":
            p = result.probabilities
            for m, a in result.ablations.items():
                ablations[m].append((emotion_id(r["emotion"]), EMOTIONS.index(a["emotion"])))
        else:
            p = result.modalities[modality]["probabilities"]
            if p is None:
                skipped.append({"id": r["id"], "reason": result.modalities[modality]["reason"]})
                continue
        y_true.append(emotion_id(r["emotion"]))
        probs.append([p[e] for e in EMOTIONS])
        kept.append(r)
    y_true, probs = np.array(y_true, dtype=np.int64), np.array(probs).reshape(-1, len(EMOTIONS))
    y_pred = probs.argmax(1)
    out = {"modality": modality, **classification_report(y_true, y_pred, probs), "skipped": len(skipped),
           "skipped_examples": skipped[:5]}
    out["per_speaker"] = _by(kept, y_true, y_pred, lambda r: r.get("speaker"))
    groups = {}
    for key in GROUP_KEYS:
        fn = (lambda r, k=key: age_group(r["extra"][k]) if r["extra"].get(k) else None) if key == "age" else \
             (lambda r, k=key: r["extra"].get(k))
        by = _by(kept, y_true, y_pred, fn)
        if by:
            groups[key] = by
    out["per_group"] = groups
    if modality == "fused":
        out["ablation"] = {f"without_{m}": {"n": len(v), "accuracy": float(np.mean([t == p for t, p in v]))}
                           for m, v in ablations.items() if v}
    return out


def report(model: StressModel | Backend, data: str, modality: str = "fused", split: str | None = None,
           speakers: str | None = None, limit: int = 0, progress: bool = False) -> dict:
    """evaluate() on the records select_records picks (at most `limit`, a stable class-balanced sample), with the
    selection recorded in the document. Raises ValueError when no labelled record matches."""
    records = select_records(data, split, speakers)
    if not records:
        raise ValueError(f"no labelled records match in {data} (split {split}, speakers {speakers})")
    if limit and len(records) > limit:
        idx = D.balanced_indices(D.labels_of(records), max(1, limit // len(EMOTIONS)), np.random.default_rng(0))
        records = [records[i] for i in sorted(idx)]
    doc = evaluate(model, records, modality, progress=progress)
    doc["data"], doc["split"] = data, split
    return doc


def _by(records, y_true, y_pred, key) -> dict:
    groups = defaultdict(list)
    for i, r in enumerate(records):
        k = key(r)
        if k is not None:
            groups[str(k)].append(i)
    if len(groups) < 1 or (len(groups) == 1 and None in groups):
        return {}
    out = {}
    for k, idx in sorted(groups.items()):
        rep = classification_report(y_true[idx], y_pred[idx])
        out[k] = {"n": rep["n"], "accuracy": round(rep["accuracy"], 4), "uar": round(rep["uar"], 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint folder or Hub id, or a folder `stresslab export` wrote "
                   "(scored on onnxruntime, the path its users run)")
    p.add_argument("--data", required=True, help="a clip folder (training.prepare writes them)")
    p.add_argument("--modality", default="fused", choices=["fused", *MODALITIES])
    p.add_argument("--split", help="only records of this split (train, dev, val, test)")
    p.add_argument("--speakers", choices=sorted(D.DEFAULT_SPLITS), help="use our speaker-disjoint split of a corpus")
    p.add_argument("--limit", type=int, default=0, help="at most N records (a stable, class-balanced sample)")
    p.add_argument("--json", action="store_true", help="print the JSON document (the default output)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        doc = report(load_model(args.model), args.data, args.modality, args.split, args.speakers, args.limit,
                     progress=True)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    doc["model"] = args.model
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
