"""`stresslab corrections add|list|export|push|erase`: the correction store from a shell.

    stresslab corrections add --store DIR --emotion E [--clip PATH] [--stress N] [--text T] [--note N]
                              [--keep-media] [--share] [--model-output JSON_FILE]     prints the receipt id
    stresslab corrections list --store DIR [--json]
    stresslab corrections export --store DIR OUT
    stresslab corrections push --store DIR [--repo ID] [--public-repo ID]          token from HF_TOKEN
    stresslab corrections erase --store DIR ID

Also `python -m stresslab.corrections.cli add ...` (no model is loaded either way). Errors exit with status 2 and
one line `error: ...` on stderr. Bad record files found while reading are moved to the store's quarantine/ and named
in one line `warning: ...` on stderr; the good records are listed, exported and pushed as usual.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..cli_common import group_parser, run_group
from ..files import printable
from ..labels import EMOTIONS
from . import store as store_module
from .hub_sync import HubSync
from .record import correction_record, receipt_id
from .store import FeedbackStore


def _fail(message: str) -> int:
    print(f"error: {printable(message)}", file=sys.stderr)
    return 2


def _warn_problems(store: FeedbackStore) -> None:
    if store.problems:
        print(f"warning: {printable(store.problem_line())}", file=sys.stderr)


def _existing(args: argparse.Namespace) -> FeedbackStore:
    if not (Path(args.store) / "records").is_dir():
        raise ValueError(f"{args.store} is not a correction store (no records/ folder)")
    return FeedbackStore(args.store)


def cmd_add(args: argparse.Namespace) -> int:
    """Save a correction; prints its receipt id."""
    output = None
    if args.model_output:
        try:
            output = json.loads(Path(args.model_output).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{args.model_output}: not JSON ({e})") from None
        if not isinstance(output, dict):
            raise ValueError(f"{args.model_output}: expected a JSON object (the analysis that was shown)")
    if args.clip and not Path(args.clip).is_file():
        raise ValueError(f"{args.clip}: no such file")
    from .. import __version__

    record = correction_record(output, args.emotion, stress_rating=args.stress, note=args.note or "",
                               transcript=args.text, keep_media=args.keep_media, share=args.share,
                               media_path=args.clip, app_version=f"stresslab-cli {__version__}")
    saved = FeedbackStore(args.store).add(record, media_path=args.clip if record.consent_keep_media else None)
    print(saved.id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List the records, oldest first."""
    store = _existing(args)
    records = store.records()
    _warn_problems(store)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    for r in records:
        print(f"{r.id}  {r.created_utc}  {r.emotion or 'none':<8} stress {r.stress_rating or '-'}  "
              f"media {r.media_kind or '-':<5}  share {'yes' if r.consent_share else 'no'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Copy records and media to a folder that datasets.load_dataset reads."""
    store = _existing(args)
    out = store.export(args.out)
    _warn_problems(store)
    print(f"exported to {out}; load with datasets.load_dataset('json', data_files='{out}/records/*.jsonl')")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push pending records and erasures to the Hub now."""
    token = os.environ.get("HF_TOKEN")
    repo = args.repo or os.environ.get("STRESSLAB_FEEDBACK_REPO")
    if not token or not repo:
        return _fail("pushing needs HF_TOKEN in the environment and --repo (or STRESSLAB_FEEDBACK_REPO)")
    store = _existing(args)
    sync = HubSync(store, repo, token, args.public_repo or os.environ.get("STRESSLAB_FEEDBACK_PUBLIC_REPO"),
                   endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        done = sync.push_once()
    except Exception as e:  # any Hub failure: the records stay in the store for the next push
        return _fail(f"push failed, records kept locally: {sync._clean(f'{type(e).__name__}: {e}')}".splitlines()[0])
    finally:
        _warn_problems(store)
    print(f"pushed {done['sent']} record(s), {done['erased']} erasure(s); {sync.status()['pending']} pending")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase a record and its media (the Hub copy at the next push)."""
    rid = receipt_id(args.id)
    if not _existing(args).erase(rid):
        return _fail(f"no record {rid} in {args.store}")
    print(f"erased {rid}")
    return 0


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        logging.getLogger(store_module.__name__).setLevel(logging.ERROR)  # bad records: one `warning:` line instead
        try:
            return func(args)
        except (ValueError, OSError) as e:
            return _fail(str(e) or type(e).__name__)

    return run


def register(sub: argparse._SubParsersAction) -> None:
    """Add `corrections` and its subcommands to the main parser's subparsers; each sets `func` (returns the exit
    status)."""
    cs = group_parser(sub, "corrections", help="the correction store: add, list, export, push, erase")
    a = cs.add_parser("add", help="save a correction; prints its receipt id")
    a.add_argument("--store", required=True, help="the store folder (created if missing)")
    a.add_argument("--clip", help="the clip the correction is about (kept only with --keep-media)")
    a.add_argument("--emotion", required=True, choices=[*EMOTIONS, "none"], help="the right emotion, or none")
    a.add_argument("--stress", type=int, choices=range(1, 6), help="1 (calm) .. 5 (very stressed)")
    a.add_argument("--text", help="the transcript that was shown")
    a.add_argument("--note", help="free text")
    a.add_argument("--keep-media", action="store_true", help="consent: keep the clip in the store")
    a.add_argument("--share", action="store_true", help="consent: the record may go to a public dataset")
    a.add_argument("--model-output", help="a JSON file with the analysis that was shown")
    ls = cs.add_parser("list", help="list the records")
    ls.add_argument("--json", action="store_true", help="one JSON list")
    ex = cs.add_parser("export", help="copy records and media to a folder that datasets.load_dataset reads")
    ex.add_argument("out")
    pu = cs.add_parser("push", help="push pending records and erasures to the Hub now (token from HF_TOKEN)")
    pu.add_argument("--repo", help="private dataset repo (default STRESSLAB_FEEDBACK_REPO)")
    pu.add_argument("--public-repo", help="public repo for shared records (default STRESSLAB_FEEDBACK_PUBLIC_REPO)")
    er = cs.add_parser("erase", help="erase a record and its media by receipt id")
    er.add_argument("id")
    for parser, func in ((a, cmd_add), (ls, cmd_list), (ex, cmd_export), (pu, cmd_push), (er, cmd_erase)):
        if parser is not a:
            parser.add_argument("--store", required=True, help="the store folder")
        parser.set_defaults(func=_guarded(func))


def main(argv: list[str] | None = None) -> int:
    """`python -m stresslab.corrections.cli ACTION ...`: the same subcommands without the rest of the CLI."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_group("corrections", register, argv)


if __name__ == "__main__":
    sys.exit(main())
