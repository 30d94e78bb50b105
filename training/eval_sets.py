"""The one table of evaluation sets: what the bundled default is measured on, read by scripts/train_default.sh,
training.model_card and bench.accuracy.

    python -m training.eval_sets --model models/default --out runs/default/eval [--data data/corpora] [NAME ...]

writes OUT/NAME.json (training.evaluate's JSON document) for each set, or for the named ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EvalSet:
    """One measurement: a modality of the model on some records of a clip folder (data/corpora/<corpus>)."""

    name: str  # the JSON file's stem
    corpus: str  # the clip folder's name under the data root
    modality: str  # video | audio | text | fused
    part: str  # what is measured, as the model card says it
    data: str  # which records, and what they were used for
    split: str | None = None  # only records of this split (with speakers: this part of the speaker split)
    speakers: bool = False  # split by training.data.DEFAULT_SPLITS[corpus] (speaker-disjoint)
    target: str = ""  # the figure the project aims for
    bench: bool = True  # a row of bench.accuracy's table (the README's accuracy section)

    def evaluate_args(self, root: str | Path = "data/corpora") -> list[str]:
        """The training.evaluate arguments that select these records."""
        args = ["--data", str(Path(root) / self.corpus), "--modality", self.modality]
        if self.speakers:
            args += ["--speakers", self.corpus]
        return args + (["--split", self.split] if self.split else [])


EVAL_SETS: tuple[EvalSet, ...] = (
    EvalSet("emodb-test-audio", "emodb", "audio", "audio tower",
            "EmoDB, test speakers 03 + 08 (never seen in training or selection)", "test", True, "UAR >= 0.72"),
    EvalSet("emodb-val-audio", "emodb", "audio", "audio tower",
            "EmoDB, validation speakers 09 + 10 (used for early stopping)", "val", True, bench=False),
    EvalSet("fer-val-video", "fer2013", "video", "video tower",
            "FER2013 official PublicTest ('val', never used in training or selection)", "val",
            target="accuracy >= 0.66"),
    EvalSet("goemotions-dev-text", "goemotions", "text", "text tower",
            "GoEmotions dev (never used in training or selection)", "dev", target="macro-F1 >= 0.58"),
    EvalSet("cremad-fused", "cremad", "fused", "fused",
            "CREMA-D sample: 1001 video+audio+sentence (seen in fusion training), 1002 audio+sentence (held out)"),
    EvalSet("cremad-video", "cremad", "video", "video tower",
            "CREMA-D sample, video frames through the face finder (actor 1001; the face tower never saw CREMA-D)",
            bench=False),
    EvalSet("cremad-audio", "cremad", "audio", "audio tower",
            "CREMA-D sample, audio only (1001 trained on, 1002 held out)", bench=False),
)
BY_NAME = {s.name: s for s in EVAL_SETS}


def run(model: str | Path, out: str | Path, root: str | Path = "data/corpora", names: list[str] | None = None,
        progress: bool = True) -> dict[str, dict]:
    """Evaluate the model on each set (or the named ones), write OUT/<name>.json; returns the documents."""
    from stresslab.runtime import load_model
    from training.evaluate import report

    unknown = sorted(set(names or ()) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown evaluation sets {unknown}; expected some of {', '.join(BY_NAME)}")
    net = load_model(model)  # a torch checkpoint, or an exported folder on onnxruntime
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for s in (BY_NAME[n] for n in names) if names else EVAL_SETS:
        doc = report(net, str(Path(root) / s.corpus), s.modality, s.split, s.corpus if s.speakers else None,
                     progress=progress)
        doc["model"] = str(model)
        (out / f"{s.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        done[s.name] = doc
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.eval_sets", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"some of {', '.join(BY_NAME)} (default: all)")
    p.add_argument("--model", required=True, help="checkpoint folder or Hub id")
    p.add_argument("--out", required=True, help="folder for the JSON documents")
    p.add_argument("--data", default="data/corpora", help="the folder that holds the prepared clip folders")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    try:
        run(args.model, args.out, args.data, args.names)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
