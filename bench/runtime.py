"""torch vs ONNX float32 vs ONNX int8, side by side in one run: process start to JSON, app start and memory, a 5 s
clip with every modality and ablation, folder size, and agreement with torch on the example clips.

    .venv/bin/python -m bench.runtime [--runs 3]
The ONNX folders are exported from the bundled default into a temporary folder first (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import app_start
from bench.common import EXAMPLES, ROOT, machine, make_clip, update_readme, write_json

MODEL = ROOT / "models" / "default"
EXAMPLE = EXAMPLES / "1001_DFA_ANG_XX.flv"


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def cli_seconds(model: Path, runs: int) -> float:
    """Median wall time of `stresslab analyze EXAMPLE --json` as a fresh process (imports + load + analysis)."""
    env = {**os.environ, "STRESSLAB_THREADS": "2"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "stresslab"), "analyze", str(EXAMPLE), "--text",
                        "Don't forget a jacket", "--json", "--model", str(model)], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def clip_ms(model: Path, clip_path: Path, runs: int) -> float:
    """Median ms of one 5 s analysis (all modalities, every ablation) in a warm process."""
    import stresslab

    analyzer = stresslab.Analyzer(str(model))
    clip = stresslab.load_clip(clip_path, text="Don't forget a jacket")
    analyzer.analyze(clip)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        analyzer.analyze(clip)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def example_answers(model: Path) -> list[tuple[str, list[float]]]:
    import stresslab

    analyzer = stresslab.Analyzer(str(model))
    out = []
    for p in sorted(EXAMPLES.glob("1001_*.flv")) + sorted(EXAMPLES.glob("1002_*.mp3")):
        r = analyzer.analyze(stresslab.load_clip(p, text="Don't forget a jacket"))
        out.append((r.emotion, list(r.probabilities.values())))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    import stresslab
    from stresslab.runtime.export import export

    stresslab.configure_threads(2)
    tmp = Path(tempfile.mkdtemp())
    base = stresslab.StressModel.from_pretrained(MODEL)
    folders = {"torch": MODEL, "onnx": export(base, tmp / "fp32"), "onnx-int8": export(base, tmp / "int8", int8=True)}
    clip5 = make_clip(5.0, tmp / "clip5.mp4")
    reference = example_answers(MODEL)
    rows = {}
    for name, folder in folders.items():
        os.environ["STRESSLAB_MODEL"] = str(folder)
        starts = [app_start.one_run() for _ in range(args.runs)]
        answers = example_answers(folder)
        rows[name] = {
            "cli_start_to_json_s": cli_seconds(folder, args.runs),
            "app_ready_s": statistics.median(r["ready_s"] for r in starts),
            "app_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in starts),
            "clip5_ms": clip_ms(folder, clip5, 2 * args.runs + 1),
            "folder_mb": folder_mb(folder),
            "same_answer_as_torch": sum(a[0] == b[0] for a, b in zip(answers, reference, strict=True)),
            "max_prob_diff": float(max(np.abs(np.array(a[1]) - np.array(b[1])).max()
                                       for a, b in zip(answers, reference, strict=True))),
        }
        print(name, json.dumps(rows[name]), flush=True)
    os.environ.pop("STRESSLAB_MODEL", None)
    write_json("runtime", {"machine": machine(), "runs": args.runs, "rows": rows})
    t = rows["torch"]
    head = "| measure | torch float32 | ONNX float32 | ONNX int8 |\n| --- | --- | --- | --- |\n"
    fmt = {"cli_start_to_json_s": ("one clip, process start to JSON", "{:.2f} s"),
           "app_ready_s": ("app, start to page served", "{:.1f} s"),
           "app_peak_rss_mb": ("app, peak resident memory", "{:.0f} MB"),
           "clip5_ms": ("5 s clip, every modality and ablation", "{:.0f} ms"),
           "folder_mb": ("model folder", "{:.0f} MB")}
    lines = []
    for key, (label, f) in fmt.items():
        cells = [f.format(rows[n][key]) + ("" if n == "torch" else f" ({rows[n][key] / t[key]:.2f}x)")
                 for n in folders]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = len(reference)
    lines.append("| same top emotion as torch on the 12 examples | " + " | ".join(
        f"{rows[k]['same_answer_as_torch']}/{n} (max prob. diff {rows[k]['max_prob_diff']:.3f})" for k in folders)
        + " |")
    table = head + "\n".join(lines) + (
        f"\n\nMedians of {args.runs} runs (5 s clip: {2 * args.runs + 1}), one process per cold start, 2 threads, "
        f"`models/default` exported by `stresslab export` in the same run; {time.strftime('%Y-%m-%d')}. "
        "The torch process imports torch even for a typed-words call; the ONNX processes never import it.")
    update_readme("runtime", table)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
