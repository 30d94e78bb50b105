"""Latency of analyze() per stage on 2 s, 5 s and 30 s clips (all three modalities, every ablation, no ASR),
against the naive way of ablating (one full analysis per dropped modality), and how cost grows with length.

    .venv/bin/python -m bench.latency [--model DIR] [--runs 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.common import ROOT, machine, make_clip, median_timings, update_readme, write_json
from stresslab import MODALITIES, analyze, load_clip, load_model

TEXT = "I told you I would be there on time, and now look at this."
STAGES = ["decode", "faces", "video", "audio_features", "audio", "text", "fusion", "ablations", "stress", "total"]


def naive_ablation_seconds(path: Path, model, text: str) -> float:
    """The naive way: a whole analysis (decode + every tower) once per dropped modality."""
    t = time.perf_counter()
    for m in MODALITIES:
        clip = load_clip(path, text=None if m == "text" else text)
        if m == "video":
            clip.frames = clip.frame_times = None
        if m == "audio":
            clip.audio = None
        analyze(clip, model=model, settings=None).to_dict()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lengths", default="2,5,10,20,30")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    lengths = [float(x) for x in args.lengths.split(",")]
    rows, growth = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        analyze(make_clip(2, Path(tmp) / "warm.mp4"), text=TEXT, model=model)  # warm-up: librosa JIT, allocators
        for seconds in lengths:
            path = make_clip(seconds, Path(tmp) / f"clip{seconds:g}.mp4")
            runs, naive = [], []
            for _ in range(args.runs):
                runs.append(analyze(path, text=TEXT, model=model).timings)
            for _ in range(max(3, args.runs // 2)):
                naive.append(naive_ablation_seconds(path, model, TEXT))
            med = median_timings(runs)
            med["naive_ablations"] = round(sorted(naive)[len(naive) // 2], 4)
            med["ablation_ratio"] = round(med["ablations"] / med["total"], 5)
            med["naive_ratio"] = round(med["naive_ablations"] / med["total"], 3)
            rows[f"{seconds:g}s"] = med
            growth.append((seconds, med["total"]))
    source = str(getattr(model, "source", args.model)).replace(str(ROOT) + "/", "")
    data = {"machine": machine(), "model": source, "runs": args.runs,
            "latency": rows}
    write_json("latency", data)
    _plot(growth)
    header = "| clip | " + " | ".join(STAGES) + " | ablations / total | naive ablations / total |"
    lines = [header, "|" + " --- |" * (len(STAGES) + 3)]
    for name, med in rows.items():
        cells = " | ".join(f"{med.get(s, 0) * 1000:.0f}" if s != "fusion" and s != "stress" and s != "ablations"
                           else f"{med.get(s, 0) * 1000:.2f}" for s in STAGES)
        lines.append(f"| {name} | {cells} | {med['ablation_ratio']:.2%} | {med['naive_ratio']:.2f}x |")
    m = data["machine"]
    note = (f"\nMedian of {args.runs} runs, milliseconds, `{data['model']}`, all three modalities (typed text), every "
            f"ablation, no ASR; {m['threads']} torch threads on {m['cpus']} cores, torch {m['torch']}, {m['date']}. "
            "The naive column re-runs the whole analysis once per dropped modality. Latency against clip length: "
            "bench/results/latency.html.")
    update_readme("latency", "\n".join(lines) + "\n" + note)
    print("\n".join(lines))


def _plot(growth: list[tuple[float, float]]) -> None:
    try:
        import plotly.graph_objects as go
    except ImportError:
        return
    fig = go.Figure(go.Scatter(x=[g[0] for g in growth], y=[g[1] for g in growth], mode="lines+markers"))
    fig.update_layout(title="analyze() latency against clip length", xaxis_title="clip length (s)",
                      yaxis_title="median latency (s)")
    fig.write_html(str(Path(__file__).parent / "results" / "latency.html"), include_plotlyjs="cdn")


if __name__ == "__main__":
    main()
