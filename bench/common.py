"""Shared bits of the benchmarks: clips of a given length built from the real CREMA-D samples, timing helpers,
and the README table writer. Benchmarks write their figures; they never assert them."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
RESULTS = ROOT / "bench" / "results"


def source_clips() -> list[Path]:
    """The real CREMA-D video clips shipped as examples (or, before they are, the shared sample)."""
    found = sorted(EXAMPLES.glob("*.flv"))
    return found or sorted((ROOT.parent / "shared" / "data" / "cremad-sample").glob("*.flv"))


def make_clip(seconds: float, out: Path) -> Path:
    """An mp4 (H.264 + AAC, 480x360, 30 fps) of `seconds`, the real CREMA-D videos played one after another."""
    import av

    from stresslab.media import write_media

    frames, audio = [], []
    while sum(len(a) for a in audio) < seconds * 16000:
        for src in source_clips():
            with av.open(str(src)) as c:
                frames += [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            from stresslab import load_clip

            audio.append(load_clip(src).audio)
    n_frames, n_samples = int(seconds * 30), int(seconds * 16000)
    wave = np.concatenate(audio)[:n_samples]
    return write_media(out, np.stack(frames[:n_frames]), 30, wave)


def median_timings(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for r in runs for k in r}
    return {k: round(statistics.median(r.get(k, 0.0) for r in runs), 4) for k in sorted(keys)}


def machine() -> dict:
    import os

    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}


def write_json(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def update_readme(section: str, markdown: str) -> None:
    """Replace the text between <!-- bench:SECTION --> and <!-- /bench:SECTION --> in README.md."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{markdown.strip()}\n{end}{tail}")
