"""Pre-labelling: the model's answer for every clip of a collection, computed in batch outside the app and stored
so the labelling page only reads it (10,000 clips are analysed once, not per visit).

One file per clip, prelabels/<clip>.json, written atomically when its analysis is done; a run skips the clips that
have one, so an interrupted run (killed, a crash, a closed laptop) resumes where it stopped and never redoes a
finished clip. The work is a `datasets.Dataset.map` over the pending clips, so `num_proc` spreads it over the cores
of a bigger machine with the same code. A clip that fails (undecodable media) is reported and retried next run.

A prelabel holds the fused answer (emotion, confidence, probabilities, uncertain, top2), each modality's own answer
("modalities": {"video": emotion or None, ...} and "modality_probabilities"), the transcript, the stress score, the
model's name/version, `entropy` (nats) of the fused distribution and `disagreement` (mean total-variation distance
between the present modalities' distributions, 0..1), which the "uncertain first" queue order reads, and `run`
(the id of the run that wrote it).
The model code is imported only here, inside functions: labelling, stats and export stay free of torch.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..files import write_atomic
from .collection import Collection, now_utc

_ANALYZERS: dict[str, object] = {}  # per process: model spec -> Analyzer (loaded once per worker)


def folder(collection: Collection) -> Path:
    return collection.root / "prelabels"


def load_prelabels(collection: Collection) -> dict[str, dict]:
    """clip id -> its stored prelabel (clips without one are absent)."""
    out = {}
    d = folder(collection)
    if d.is_dir():
        for p in d.glob("*.json"):
            try:
                out[p.stem] = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being replaced, or damaged: relabelled by the next run
    return out


def summarise(result: Mapping, run: str = "") -> dict:
    """The stored prelabel of one analysis (Analysis.to_dict(private=True))."""
    probs = dict(result["probabilities"])
    entropy = -sum(p * math.log(p) for p in probs.values() if p > 0)
    present = {m: d for m, d in result["modalities"].items() if d.get("present") and d.get("enabled", True)}
    dists = [d["probabilities"] for d in present.values()]
    pairs = list(itertools.combinations(dists, 2))
    disagreement = (sum(0.5 * sum(abs(a[e] - b.get(e, 0.0)) for e in a) for a, b in pairs) / len(pairs)
                    if pairs else 0.0)
    return {
        "emotion": result["emotion"], "confidence": result["confidence"], "probabilities": probs,
        "uncertain": bool(result.get("uncertain")), "top2": result.get("top2", []),
        "modalities": {m: (d["emotion"] if m in present else None) for m, d in result["modalities"].items()},
        "modality_probabilities": {m: d["probabilities"] for m, d in present.items()},
        "reasons": {m: d.get("reason") for m, d in result["modalities"].items() if m not in present},
        "transcript": (result.get("transcript") or {}).get("text") or "",
        "stress": (result.get("stress") or {}).get("score"), "model": _model_info(result.get("model") or {}),
        "entropy": entropy, "disagreement": disagreement, "run": run, "created_utc": now_utc(),
    }


def _model_info(info: Mapping) -> dict:
    """The model's name and version, and its source as a Hub id or a folder's name (never a server path)."""
    out = dict(info)
    source = out.get("source")
    if isinstance(source, str) and (source.startswith("/") or not re.fullmatch(r"[\w.-]+/[\w.-]+", source)):
        out["source"] = Path(str(source)).name
    return out


def _analyzer(model: str | None):
    key = model or ""
    if key not in _ANALYZERS:
        from ..analysis import AnalysisSettings, Analyzer

        _ANALYZERS[key] = Analyzer(model, settings=AnalysisSettings(ablations=False))
    return _ANALYZERS[key]


def _work(row: dict, collection: dict, model: str | None, run: str) -> dict:
    """datasets.map function: analyse one clip and write its prelabel; returns its status."""
    c = Collection(**{k: v for k, v in collection.items() if k != "root"}, root=Path(collection["root"]))
    dest = folder(c) / f"{row['clip_id']}.json"
    if dest.exists():  # another worker or run finished it meanwhile
        return {"status": "skipped", "error": ""}
    try:
        clip = c.media(row["clip_id"])
        result = _analyzer(model).analyze(str(clip.path)).to_dict(private=True)
    except Exception as e:  # a bad clip must not stop the batch; it is retried next run
        return {"status": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    write_atomic(dest, c.root / "tmp", json.dumps(summarise(result, run), ensure_ascii=False).encode())
    return {"status": "done", "error": ""}


def prelabel(collection: Collection, model: str | None = None, num_proc: int | None = None,
             limit: int | None = None) -> dict:
    """Pre-label the clips that have no prelabel yet (at most `limit`), with `num_proc` worker processes (None: in
    this process). Returns {"done", "failed", "already", "run", "errors": {clip: message}}."""
    import datasets

    from ..runtime import configure_threads

    configure_threads()
    out_dir = folder(collection)
    out_dir.mkdir(parents=True, exist_ok=True)
    (collection.root / "tmp").mkdir(exist_ok=True)
    clips = [c.id for c in collection.clips()]
    pending = [c for c in clips if not (out_dir / f"{c}.json").exists()]
    if limit is not None:
        pending = pending[:limit]
    run = uuid.uuid4().hex[:12]
    summary = {"done": 0, "failed": 0, "already": len(clips) - len(pending) if limit is None else None,
               "run": run, "errors": {}}
    if not pending:
        return summary
    definition = {k: v for k, v in vars(collection).items()} | {"root": str(collection.root)}
    ds = datasets.Dataset.from_dict({"clip_id": pending})
    done = ds.map(_work, fn_kwargs={"collection": definition, "model": model, "run": run},
                  num_proc=num_proc if num_proc and num_proc > 1 else None, load_from_cache_file=False,
                  keep_in_memory=True, desc="pre-labelling")
    for clip_id, status, error in zip(done["clip_id"], done["status"], done["error"], strict=True):
        if status == "done":
            summary["done"] += 1
        elif status == "failed":
            summary["failed"] += 1
            summary["errors"][clip_id] = error
    return summary
