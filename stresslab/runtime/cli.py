"""`stresslab export MODEL OUT [--int8]`: a torch checkpoint -> a folder that onnxruntime analyses alone."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    """Add the `export` subcommand to the CLI's subparsers."""
    e = sub.add_parser("export", help="export a checkpoint to ONNX graphs for onnxruntime (optionally int8)")
    e.add_argument("model", help="checkpoint folder or Hub model id")
    e.add_argument("out", help="the folder to write (replaced if it exists)")
    e.add_argument("--int8", action="store_true", help="dynamic int8 quantisation of the text transformer")
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from ..model import load_model
        from .export import export

        model = load_model(args.model)
        print(f"exporting {args.model} ({'int8' if args.int8 else 'float32'}) ...", file=sys.stderr)
        out = export(model, args.out, int8=args.int8)
    except ImportError as e:
        print(f"error: export needs torch, onnx and onnxruntime installed ({e.name} is missing)", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print("error: cannot export: " + " ".join(str(e).split())[:300], file=sys.stderr)
        return 2
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MB" for p in sorted((out / "onnx").glob("*.onnx")))
    print(f"wrote {out}: {sizes}", file=sys.stderr)
    return 0
