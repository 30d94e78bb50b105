"""Accuracy of the bundled default on the evaluation sets of training/eval_sets.py, as training.evaluate measured
it (the figures the model card repeats). Re-measure with --evaluate (about 2 minutes), or read
models/default/eval/*.json as written by scripts/train_default.sh.

    .venv/bin/python -m bench.accuracy [--evaluate]
"""

from __future__ import annotations

import argparse
import json

from bench.common import ROOT, update_readme, write_json
from training.eval_sets import EVAL_SETS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--evaluate", action="store_true", help="run the evaluations now (needs data/corpora)")
    args = p.parse_args()
    folder = ROOT / "models" / "default" / "eval"
    sets = [s for s in EVAL_SETS if s.bench]
    if args.evaluate:
        from training.eval_sets import run

        run(ROOT / "models" / "default", folder, ROOT / "data" / "corpora", [s.name for s in sets])
    rows, data = [], {}
    for s in sets:
        d = json.loads((folder / f"{s.name}.json").read_text())
        data[s.name] = {k: d[k] for k in ("n", "accuracy", "uar", "macro_f1", "ece")}
        rows.append(f"| {s.modality} | {s.data} | {d['n']} | {d['accuracy']:.3f} | {d['uar']:.3f} | "
                    f"{d['macro_f1']:.3f} |")
    write_json("accuracy", data)
    table = "| part | held-out data | n | accuracy | UAR | macro-F1 |\n| --- | --- | --- | --- | --- | --- |\n"
    update_readme("accuracy", table + "\n".join(rows))
    print(table + "\n".join(rows))


if __name__ == "__main__":
    main()
