"""`stresslab corrections add|list|export|push|erase`: the correction store from a shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .feedback import CorrectionRecord, FeedbackStore
from .hub_sync import HubSync
from .labels import EMOTIONS


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_add(args: argparse.Namespace) -> int:
    try:
        output = json.loads(Path(args.model_output).read_text()) if args.model_output else {}
        emotion = None if args.emotion == "none" else args.emotion
        record = CorrectionRecord(emotion=emotion, stress_rating=args.stress, note=args.note or "",
                                  transcript=args.text, model_output=output, consent_keep_media=args.keep_media,
                                  consent_share=args.share, app_version="cli",
                                  model_version=str(output.get("model", {}).get("version", "")))
        if args.clip and not Path(args.clip).is_file():
            return _fail(f"{args.clip}: no such file")
        saved = FeedbackStore(args.store).add(record, media_path=args.clip if args.keep_media else None)
    except (ValueError, OSError) as e:
        return _fail(str(e))
    print(saved.id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    records = FeedbackStore(args.store).records()
    if args.json:
        print(json.dumps([r.__dict__ for r in records], indent=2))
        return 0
    for r in records:
        media = r.media_kind or "-"
        print(f"{r.id}  {r.created_utc}  {r.emotion or 'none':<8} stress {r.stress_rating or '-'}  media {media:<5} "
              f"share {'yes' if r.consent_share else 'no'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = FeedbackStore(args.store).export(args.out)
    print(f"exported to {out} (load with datasets.load_dataset('json', data_files='{out}/records/*.jsonl'))")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    token = os.environ.get("HF_TOKEN")
    repo = args.repo or os.environ.get("STRESSLAB_FEEDBACK_REPO")
    if not token or not repo:
        return _fail("set HF_TOKEN and --repo (or STRESSLAB_FEEDBACK_REPO)")
    sync = HubSync(FeedbackStore(args.store), repo, token, args.public_repo or os.environ.get(
        "STRESSLAB_FEEDBACK_PUBLIC_REPO"), endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        n = sync.push_once()
    except Exception as e:
        return _fail(f"push failed, records kept locally: {sync._clean(str(e))}")
    print(f"pushed {n} record(s)")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    try:
        if not FeedbackStore(args.store).erase(args.id):
            return _fail(f"no record {args.id} in {args.store}")
    except ValueError as e:
        return _fail(str(e))
    print(f"erased {args.id}")
    return 0


def register(sub) -> None:
    """Add `corrections` and its subcommands to the main parser's subparsers."""
    p = sub.add_parser("corrections", help="the correction store: add, list, export, push, erase")
    cs = p.add_subparsers(dest="action", required=True)
    a = cs.add_parser("add", help="save a correction; prints its receipt id")
    a.add_argument("--store", required=True)
    a.add_argument("--clip", help="the clip the correction is about")
    a.add_argument("--emotion", required=True, choices=[*EMOTIONS, "none"])
    a.add_argument("--stress", type=int, choices=range(1, 6), help="1 (calm) .. 5 (very stressed)")
    a.add_argument("--text", help="the transcript the user saw")
    a.add_argument("--note", help="free text")
    a.add_argument("--keep-media", action="store_true", help="consent: keep the clip in the store")
    a.add_argument("--share", action="store_true", help="consent: may go to a public dataset")
    a.add_argument("--model-output", help="a JSON file with the analysis that was shown")
    a.set_defaults(func=cmd_add)
    ls = cs.add_parser("list", help="list the records")
    ls.add_argument("--store", required=True)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    ex = cs.add_parser("export", help="copy records and media to a folder")
    ex.add_argument("--store", required=True)
    ex.add_argument("out")
    ex.set_defaults(func=cmd_export)
    pu = cs.add_parser("push", help="push pending records to the Hub now (token from HF_TOKEN)")
    pu.add_argument("--store", required=True)
    pu.add_argument("--repo")
    pu.add_argument("--public-repo")
    pu.set_defaults(func=cmd_push)
    er = cs.add_parser("erase", help="erase a record and its media by receipt id")
    er.add_argument("--store", required=True)
    er.add_argument("id")
    er.set_defaults(func=cmd_erase)
