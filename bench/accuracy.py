"""Accuracy of the bundled default on our held-out splits, as training.evaluate measured it (the figures the model
card repeats). Re-measure with --evaluate (about 2 minutes), or read models/default/eval/*.json as written by
scripts/train_default.sh.

    .venv/bin/python -m bench.accuracy [--evaluate]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.common import ROOT, update_readme, write_json

SETS = [
    ("emodb-test-audio", "audio", "EmoDB test speakers 03, 08", ["--data", "data/corpora/emodb", "--speakers", "emodb",
                                                                "--split", "test", "--modality", "audio"]),
    ("fer-val-video", "video", "FER2013 PublicTest", ["--data", "data/corpora/fer2013", "--split", "val",
                                                      "--modality", "video"]),
    ("goemotions-dev-text", "text", "GoEmotions dev", ["--data", "data/corpora/goemotions", "--split", "dev",
                                                       "--modality", "text"]),
    ("cremad-fused", "fused", "CREMA-D sample (12 clips)", ["--data", "data/corpora/cremad", "--modality", "fused"]),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--evaluate", action="store_true", help="run training.evaluate now (needs data/corpora)")
    args = p.parse_args()
    folder = ROOT / "models" / "default" / "eval"
    rows, data = [], {}
    for name, part, what, cli in SETS:
        if args.evaluate:
            out = subprocess.run([sys.executable, "-m", "training.evaluate", "--model", "models/default", *cli,
                                  "--json"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
            (folder / f"{name}.json").write_text(out)
        d = json.loads((folder / f"{name}.json").read_text())
        data[name] = {k: d[k] for k in ("n", "accuracy", "uar", "macro_f1", "ece")}
        rows.append(f"| {part} | {what} | {d['n']} | {d['accuracy']:.3f} | {d['uar']:.3f} | {d['macro_f1']:.3f} |")
    write_json("accuracy", data)
    table = "| part | held-out data | n | accuracy | UAR | macro-F1 |\n| --- | --- | --- | --- | --- | --- |\n"
    update_readme("accuracy", table + "\n".join(rows))
    print(table + "\n".join(rows))


if __name__ == "__main__":
    main()
