"""Throughput: batch analysis from the CLI (clips per second, process start included and excluded), and training
samples per second per stage (a few timed steps of each stage on the prepared corpora).

    .venv/bin/python -m bench.throughput [--data data/corpora]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import EXAMPLES, ROOT, machine, update_readme, write_json


def cli_batch() -> dict:
    clips = sorted(EXAMPLES.glob("*.flv")) + sorted(EXAMPLES.glob("*.mp3"))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stresslab.cli", "analyze", str(clips[0]), "--json"], cwd=ROOT,
                   capture_output=True, check=True)
    one = time.perf_counter() - t
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "stresslab.cli", "analyze", *map(str, clips), "--json"], cwd=ROOT,
                         capture_output=True, check=True, text=True)
    many = time.perf_counter() - t
    assert len(json.loads(out.stdout)) == len(clips)
    per_clip = (many - one) / (len(clips) - 1)  # the start-up (imports, model load, warm-up) counted once
    return {"clips": len(clips), "one_clip_s": round(one, 2), "batch_s": round(many, 2),
            "clips_per_s_including_start": round(len(clips) / many, 2), "clips_per_s_steady": round(1 / per_clip, 2)}


def training(data: str) -> dict:
    """Samples/s of each stage: a short run per stage with a small budget; samples = steps x batch."""
    out = {}
    budgets = {"video": ["video.epochs=1", "video.limit=2560"], "audio": ["audio.epochs=3", "audio.refit=false"],
               "text": ["text.epochs=1", "text.cap=200"], "fusion": ["fusion.steps=200", "optim.eval_every=1000"],
               "joint": ["joint.steps=10", "optim.eval_every=1000"]}
    run = ROOT / "runs" / "bench-throughput"  # beside runs/default, so the feature caches (runs/cache) are warm
    shutil.rmtree(run, ignore_errors=True)
    done: list[str] = []
    for stage, extra in budgets.items():
        subprocess.run([sys.executable, "-m", "training.train", "--config", "training/configs/default.toml",
                        "--set", f'out="{run}"', 'export=""', f'data="{data}"',
                        f"stages={json.dumps([*done, stage])}", *extra], cwd=ROOT, check=True,
                       capture_output=True)
        seconds = json.loads((run / "state.json").read_text())["seconds"][stage]
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        samples = {"video": 2560 // 128 * 128, "audio": None, "text": 200 * 6 // 32 * 32, "fusion": 200 * 128,
                   "joint": 10 * 24}[stage]
        if stage == "audio":
            per_epoch = next(r["samples_per_epoch"] for r in log if "samples_per_epoch" in r)
            samples = per_epoch * sum(1 for r in log if r["stage"] == "audio" and "epoch" in r)
        out[stage] = {"seconds": seconds, "samples": samples,
                      "samples_per_s": round(samples / seconds, 1) if samples else None}
        done.append(stage)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/corpora")
    p.add_argument("--skip-training", action="store_true")
    args = p.parse_args()
    batch = cli_batch()
    result = {"machine": machine(), "cli_batch": batch}
    lines = ["| throughput | value |", "| --- | --- |",
             f"| `stresslab analyze` on the 12 examples, start-up included | "
             f"{batch['clips_per_s_including_start']} clips/s |",
             f"| the same, steady state (start-up counted once) | {batch['clips_per_s_steady']} clips/s |",
             f"| one clip, process start to JSON | {batch['one_clip_s']} s |"]
    if not args.skip_training and Path(args.data, "fer2013").exists():
        result["training"] = training(args.data)
        for stage, d in result["training"].items():
            if d["samples_per_s"]:
                lines.append(f"| training stage `{stage}` (short run, data loading and evaluation included) | "
                             f"{d['samples_per_s']} samples/s |")
    write_json("throughput", result)
    update_readme("throughput", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
