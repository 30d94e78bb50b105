"""Adaptation (issue 17): UAR on new speakers against the number of corrections from other new speakers, beside
forgetting on the original evaluation sets, through the same code as `stresslab finetune` (training.finetune).

    .venv/bin/python -m bench.adaptation --data DIR --model MODEL [--counts 0 25 50 100 250] [--no-readme]

DIR holds prepared clip folders: ravdess/ (needed: `python -m training.prepare ravdess ../shared/data/ravdess-speech
DIR/ravdess --link`) and, for forgetting, emodb/, cremad/, goemotions/ (training.eval_sets' sets on them).
MODEL must never have heard RAVDESS: the 0.1 default (voices from EmoDB + CREMA-D) had not, the 0.2 default was
trained on these actors, so measure from a model trained without RAVDESS (the 0.1 default: git show
28b7a2f:models/default/<file>). Of its 18 actors here, 05 + 06 are its validation speakers in
training.data.DEFAULT_SPLITS (kept out of both groups below), the corrections come from actors CORRECTORS and the
figures are measured on actors MEASURED, never corrected.
Each count n takes the first n of one stable shuffle of the correctors' clips (the same clips grow), fine-tuned with
`stresslab finetune`'s default settings; at the largest count, VARIANTS show what replay and distillation each do.
MODEL's replay set must come from MODEL's own towers (`python -m training.replay --model MODEL`).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from bench.common import ROOT, update_readme, write_json

CORRECTORS = ("07", "08", "09", "10", "11", "12")
MEASURED = ("19", "20", "21", "22", "23", "24")
TEXT_LIMIT = 600  # goemotions-dev-text: a stable class-balanced sample of this many sentences (as evaluate --limit)


def original_sets(data: Path, config) -> dict[str, tuple[str, list]]:
    """training.eval_sets' sets present under data, as usable items through tower_inputs once:
    {name: (the answer scored, items)}: EmoDB test speakers (audio head), the CREMA-D sample (fused), a stable
    class-balanced sample of TEXT_LIMIT GoEmotions dev sentences (text head)."""
    from stresslab.inputs import TowerInputs
    from training import data as D
    from training import finetune_data as FD
    from training.clip_folder import read_clip_folder

    out, skipped = {}, Counter()
    if (data / "emodb" / "metadata.jsonl").is_file():
        test = {r["id"] for r in D.default_split(read_clip_folder(data / "emodb"), "emodb")["test"]}
        clips = [c for c in FD.from_clip_folder(data / "emodb") if c.id in test]
        for c in clips:
            c.text = None
        out["emodb-test-audio"] = ("audio", FD.to_usable(clips, config, skipped, progress=False))
    if (data / "cremad" / "metadata.jsonl").is_file():
        out["cremad-fused"] = ("fused", FD.to_usable(FD.from_clip_folder(data / "cremad"), config, skipped, False))
    if (data / "goemotions" / "metadata.jsonl").is_file():
        dev = [r for r in read_clip_folder(data / "goemotions") if r["split"] == "dev" and r["emotion"]]
        y = D.labels_of(dev)
        idx = sorted(D.balanced_indices(y, TEXT_LIMIT // 6, np.random.default_rng(0)))
        out["goemotions-dev-text"] = ("text", [FD.Usable(dev[i]["id"], TowerInputs(windows=[(0.0, 0.0)]),
                                                         dev[i]["text"], int(y[i]), -1.0, None) for i in idx])
    return out


def forgetting(model, sets: dict) -> dict[str, float]:
    """UAR of each original set's answer (training.finetune.score)."""
    from training.finetune import score

    return {name: score(model, items)[answer]["uar"] for name, (answer, items) in sets.items()}


VARIANTS = {  # compared at the largest count, beside the default (training.finetune.FinetuneConfig)
    "no replay": {"replay": 0},
    "distillation on the corrections, no replay": {"replay": 0, "distill": 1.0},
}


def _row(run: dict, before: dict) -> str:
    lost = ", ".join(f"{k} {v - before[k]:+.3f}" for k, v in run["original"].items()) or "-"
    return (f"| {run['n']} | {run['variant']} | {run['audio_uar']:.3f} | {run['fused_uar']:.3f} | {lost} | "
            f"{run['seconds']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of prepared clip folders (ravdess/ at least)")
    p.add_argument("--model", default=str(ROOT / "models" / "default"))
    p.add_argument("--replay", help="the replay set (training.replay); default MODEL/replay.safetensors")
    p.add_argument("--counts", type=int, nargs="*", default=[0, 25, 50, 100, 250])
    p.add_argument("--no-variants", action="store_true", help="only the curve, with the default settings")
    p.add_argument("--no-readme", action="store_true")
    p.add_argument("--table", action="store_true", help="only write the README table from bench/results")
    args = p.parse_args(argv)
    if args.table:
        return table()
    import torch

    from stresslab.model import StressModel
    from training import finetune as FT
    from training import finetune_data as FD

    torch.set_num_threads(2)
    data = Path(args.data)
    replay = Path(args.replay) if args.replay else FT.replay_path(args.model)
    initial = StressModel.from_pretrained(args.model)
    initial.config.audio.speech_detector = "relative"
    records = FD.from_clip_folder(data / "ravdess")
    skipped: Counter = Counter()
    pool = FD.to_usable([r for r in records if r.speaker in CORRECTORS], initial.config, skipped)
    test = FD.to_usable([r for r in records if r.speaker in MEASURED], initial.config, skipped)
    pool = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]
    default = FT.FinetuneConfig()
    results = {"correctors": CORRECTORS, "measured": MEASURED, "n_measured": len(test), "config": asdict(default),
               "replay": str(replay) if replay else None, "runs": []}
    sets = original_sets(data, initial.config)
    results["original_before"] = forgetting(initial, sets)
    for n in args.counts:
        variants = {"default": {}}
        if n == max(args.counts) and not args.no_variants:
            variants.update(VARIANTS)
        for name, change in variants.items():
            model, seconds = copy.deepcopy(initial), 0.0
            if n:
                t = time.time()
                model, _ = FT.finetune(model, pool[:n], replace(default, **change), replay)
                seconds = time.time() - t
            s = FT.score(model, test)
            run = {"n": n, "variant": name, "change": change, "seconds": round(seconds, 1),
                   "audio_uar": s["audio"]["uar"], "fused_uar": s["fused"]["uar"], "original": forgetting(model, sets)}
            results["runs"].append(run)
            print(run, flush=True)
            write_json("adaptation", results)  # after each run: a stopped bench keeps what it measured
    return 0 if args.no_readme else table()


def table() -> int:
    """The README table from bench/results/adaptation.json."""
    path = ROOT / "bench" / "results" / "adaptation.json"
    if not path.is_file():
        raise SystemExit("error: no bench/results/adaptation.json yet: run the bench first")
    results = json.loads(path.read_text())
    before, cfg = results["original_before"], results["config"]
    text = ("| corrections | settings | audio UAR | fused UAR | change on the original sets (UAR) | fine-tuning s |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(_row(r, before) for r in results["runs"]))
    replay = Path(results["replay"]).name if results["replay"] else "none"
    note = (f"\n\nRAVDESS corrections from actors {', '.join(CORRECTORS)} (the first n of one shuffle); UAR on "
            f"{results['n_measured']} clips of actors {', '.join(MEASURED)}, never corrected. Default settings "
            f"(`stresslab finetune`): {cfg['steps']} steps of {cfg['batch']}, lr {cfg['lr']:g}, {cfg['replay']} "
            f"replay rows per modality and step ({replay}) with distillation {cfg['replay_distill']:g} on them, "
            f"distillation on the corrections {cfg['distill']:g}. Original sets before: "
            + ", ".join(f"{k} {v:.3f}" for k, v in before.items())
            + f" (GoEmotions: {TEXT_LIMIT} dev sentences). 2 torch threads on the 2-core machine.")
    update_readme("adaptation", text + note)
    print(text + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
