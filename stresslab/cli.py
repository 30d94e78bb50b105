"""The `stresslab` command line.

    stresslab analyze PATH [PATH ...] [--text TEXT] [--model DIR_OR_HUB_ID] [--json]
    stresslab corrections add|list|export|push|erase ...
    stresslab export MODEL OUT [--int8]            (ONNX graphs that analyse without torch)

Bad input, and a model that cannot be loaded, exit with status 2 and one line `error: ...` on stderr (no traceback,
control characters in names escaped); the other paths of a batch still get their results. With --json, stdout
holds exactly one JSON document (a list when several inputs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib.metadata import entry_points

from . import __version__
from .analysis import AnalysisSettings, analyze
from .clip import ClipError, load_clip
from .collections import cli as cli_collections
from .corrections import cli as cli_corrections
from .files import printable, shown
from .labels import MODALITIES
from .runtime import cli as cli_runtime
from .runtime import configure_threads, load_model


def _error(message: str) -> None:
    print(f"error: {printable(message)}", file=sys.stderr)


def format_result(name: str, r: dict) -> str:
    """A short human-readable table of one analysis (the dict form of Analysis)."""
    s = r["stress"]
    if r.get("uncertain"):
        (first, p1), (second, p2) = r["top2"]
        answer = f"not sure: {first} ({p1:.0%}) or {second} ({p2:.0%})"
    else:
        answer = f"{r['emotion']} ({r['confidence']:.0%})"
    lines = [f"{name}: {answer}   stress {s['score']:.2f} ({s['level']})"]
    lines.append(f"  {'modality':<8} {'weight':>6}  own answer")
    for m in MODALITIES:
        d = r["modalities"][m]
        if d["present"] and d["enabled"]:
            own = d["probabilities"][d["emotion"]]
            lines.append(f"  {m:<8} {d['weight']:>6.2f}  {d['emotion']} ({own:.0%})")
        else:
            lines.append(f"  {m:<8} {'-':>6}  missing: {d['reason']}")
    for m, a in r["ablations"].items():
        changed = ", label changed" if a["label_changed"] else ""
        lines.append(f"  without {m}: {a['emotion']} (moved {a['shift']:.2f}{changed})")
    if r["transcript"]["text"]:
        lines.append(f"  words ({r['transcript']['source']}): {r['transcript']['text'][:100]}")
    for w in r["timeline"]:
        lines.append(f"  {w['start']:6.1f}-{w['end']:<6.1f} {w['emotion']:<8} stress {w['stress']:.2f}")
    return "\n".join(lines)


def cmd_analyze(args: argparse.Namespace) -> int:
    if not args.paths and not args.text:
        _error("give one or more clip paths, or --text")
        return 2
    configure_threads()
    try:
        model = load_model(args.model, runtime=args.runtime)
    except Exception as e:  # CheckpointError, FileNotFoundError, or anything else: one line, never a traceback
        _error(f"cannot load the model {args.model or '(bundled default)'}: {str(e).strip() or type(e).__name__}")
        return 2
    from tqdm import tqdm

    settings = AnalysisSettings(ablations=not args.no_ablations, window_seconds=args.window)
    inputs = args.paths or [None]
    results, status = [], 0
    for path in tqdm(inputs, desc="analysing", unit="clip", disable=len(inputs) < 2 or not sys.stderr.isatty()):
        name = path if path is not None else "text"
        try:
            clip = load_clip(path, text=args.text)
            doc = analyze(clip, model=model, settings=settings).to_dict()
        except ClipError as e:
            msg = str(e)  # the library names a file by its base name: here the user's own path says which one
            msg = msg if path is None else f"{path}: {msg.removeprefix(shown(path) + ': ')}"
            msg = printable(msg)
            _error(msg)
            results.append({"source": path, "error": msg})
            status = 2
            continue
        results.append(doc)
        if not args.json:
            print(format_result(name, doc), flush=True)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=None if args.compact else 2))
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stresslab", description="Multimodal emotion and stress recognition.")
    p.add_argument("--version", action="version", version=f"stresslab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse clips (video, audio, image) and/or text")
    a.add_argument("paths", nargs="*", help="video, audio or image files")
    a.add_argument("--text", help="typed words (override any transcript)")
    a.add_argument("--model", help="checkpoint folder or Hub model id (default: STRESSLAB_MODEL or the bundled one)")
    a.add_argument("--runtime", choices=["torch", "onnx"], help="force a runtime (default: STRESSLAB_RUNTIME, else "
                   "onnx for a folder written by `stresslab export`, torch otherwise)")
    a.add_argument("--json", action="store_true", help="print one JSON document (a list for several inputs)")
    a.add_argument("--compact", action="store_true", help="with --json: one line")
    a.add_argument("--no-ablations", action="store_true", help="skip the drop-one-modality reruns")
    a.add_argument("--window", type=float, default=3.0, help="timeline window, seconds (default 3)")
    a.set_defaults(func=cmd_analyze)
    cli_corrections.register(sub)
    cli_collections.register(sub)
    cli_runtime.register(sub)
    for ep in entry_points(group="stresslab.commands"):  # plugins: `stresslab finetune` from training/
        try:
            ep.load()(sub)
        except ImportError:  # its extra is not installed: the other commands still work
            continue
    if "finetune" not in sub.choices:
        f = sub.add_parser("finetune", help="fine-tune on corrections: needs the training code, e.g. "
                                            "pip install -e '.[torch,train]' in a StressLab checkout")
        f.set_defaults(func=lambda args: _error("stresslab finetune needs the training code: in a StressLab "
                                               "checkout, pip install -e '.[torch,train]'") or 2)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
