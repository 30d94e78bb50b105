"""`stresslab collections ...`: annotation collections from a shell (scripts and tests use it).

    stresslab collections create NAME --from FOLDER_OR_DATASET_ID --consent TEXT [--labels-per-clip K]
                                 [--order random|uncertain] [--config C] [--split S] [--media-column COL ...]
                                 [--id-column COL] [--store DIR]          --from corrections: the store's kept clips
    stresslab collections label NAME --annotator A --clip CLIP_ID --emotion E [--stress N] [--face E] [--voice E]
                                [--words E] [--note TEXT] [--blind] [--store DIR]      prints the receipt id
    stresslab collections next NAME --annotator A [--store DIR]          the clip this annotator labels next
    stresslab collections prelabel NAME [--model M] [--num-proc N] [--limit N] [--store DIR]
    stresslab collections stats NAME [--json] [--store DIR]
    stresslab collections export NAME OUT [--all-clips] [--store DIR]
    stresslab collections push NAME --repo ID [--public] [--store DIR]   token from HF_TOKEN; private by default
    stresslab collections erase NAME RECEIPT [--store DIR]
    stresslab collections list [--store DIR]

--store defaults to STRESSLAB_FEEDBACK_DIR, else ./feedback_store (the app's correction store). --emotion takes
one of the six emotions, "none" (none of these) or "cant_tell". Also `python -m stresslab.collections.cli ...`
(no model code is imported except by prelabel). Errors exit with status 2 and one line `error: ...` on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from ..cli_common import group_parser, run_group
from ..files import printable
from ..labels import EMOTIONS
from .agreement import format_summary, summary
from .annotations import ANSWERS, AnnotationStore, annotation
from .collection import ORDERS, Collection, list_collections, now_utc, parse_source
from .prelabel import load_prelabels
from .queue import next_clips, progress


def default_store() -> str:
    return os.environ.get("STRESSLAB_FEEDBACK_DIR") or "feedback_store"


def cmd_create(args: argparse.Namespace) -> int:
    source = parse_source(args.source, args.store, config=args.config, split=args.split,
                          media_columns=args.media_column, id_column=args.id_column)
    c = Collection(args.name, source, args.consent, args.labels_per_clip, args.order, seed=args.seed,
                   created_utc=now_utc(), description=args.description or "",
                   root=Collection.folder(args.store, args.name))
    if (c.root / "collection.json").exists():
        raise ValueError(f"a collection named {args.name!r} already exists in {args.store}")
    n = len(c.clips())  # checks the source before anything is written
    if n == 0:
        raise ValueError(f"{args.source}: no clips found (expected video, audio or image files)")
    c.save()
    AnnotationStore(c.root)
    print(f"created collection {c.name}: {n} clips, {c.labels_per_clip} labels per clip, order {c.order}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    c = Collection.load(args.store, args.name)
    if args.clip not in {x.id for x in c.clips()}:
        raise ValueError(f"no clip {args.clip!r} in collection {args.name!r}")
    from .. import __version__

    pre = load_prelabels(c).get(args.clip)
    record = annotation(c.name, args.clip, args.annotator, args.emotion, stress=args.stress, note=args.note or "",
                        face=args.face, voice=args.voice, words=args.words, blind=args.blind,
                        model_output=pre or {}, app_version=f"stresslab-cli {__version__}")
    print(AnnotationStore(c.root).add(record).id)
    return 0


def cmd_next(args: argparse.Namespace) -> int:
    c = Collection.load(args.store, args.name)
    ids = [x.id for x in c.clips()]
    records = AnnotationStore(c.root).records()
    queue = next_clips(ids, records, args.annotator, c.labels_per_clip, c.order, c.seed, load_prelabels(c))
    print(queue[0] if queue else "")
    print(progress(ids, records, c.labels_per_clip, args.annotator).line(args.annotator), file=sys.stderr)
    return 0


def cmd_prelabel(args: argparse.Namespace) -> int:
    from .prelabel import prelabel

    c = Collection.load(args.store, args.name)
    done = prelabel(c, model=args.model, num_proc=args.num_proc, limit=args.limit)
    for clip_id, error in done["errors"].items():
        print(f"warning: {printable(clip_id)}: {printable(error)}", file=sys.stderr)
    already = "" if done["already"] is None else f", {done['already']} already done"
    print(f"pre-labelled {done['done']} clip(s){already}, {done['failed']} failed")
    return 2 if done["failed"] else 0


def collection_stats(c: Collection) -> dict:
    """The agreement summary of a collection plus its progress."""
    ids = [x.id for x in c.clips()]
    records = [r for r in AnnotationStore(c.root).records() if r.clip_id in set(ids)]
    return summary(records, load_prelabels(c), len(ids), c.labels_per_clip)


def cmd_stats(args: argparse.Namespace) -> int:
    s = collection_stats(Collection.load(args.store, args.name))
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    out = export(Collection.load(args.store, args.name), args.out, all_clips=args.all_clips)
    print(f"exported to {out}; load with datasets.load_dataset('{out}')")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .export import push

    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ValueError("pushing needs HF_TOKEN in the environment")
    url = push(Collection.load(args.store, args.name), args.repo, token, public=args.public,
               endpoint=os.environ.get("HF_ENDPOINT"))
    print(f"pushed {args.name} to {args.repo} ({'public' if args.public else 'private'}): {url}")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    c = Collection.load(args.store, args.name)
    if not AnnotationStore(c.root).erase(args.receipt):
        raise ValueError(f"no annotation {args.receipt} in collection {args.name!r}")
    print(f"erased {args.receipt.strip().lower()}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in list_collections(args.store):
        c = Collection.load(args.store, name)
        ids = [x.id for x in c.clips()]
        print(f"{name}: {progress(ids, AnnotationStore(c.root).records(), c.labels_per_clip).line()}")
    return 0


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, OSError) as e:
            print(f"error: {printable(str(e).splitlines()[0] if str(e) else type(e).__name__)}", file=sys.stderr)
            return 2

    return run


def register(sub: argparse._SubParsersAction) -> None:
    """Add `collections` and its subcommands to the main parser's subparsers."""
    cs = group_parser(sub, "collections", help="annotation collections: create, label, prelabel, stats, export, push")
    emotions = [*EMOTIONS]
    cr = cs.add_parser("create", help="create a collection from a folder, a HF dataset or the correction store")
    cr.add_argument("name")
    cr.add_argument("--from", dest="source", required=True, help="a folder of clips, a dataset id, or corrections")
    cr.add_argument("--consent", required=True, help="the consent basis for the media (recorded, exported)")
    cr.add_argument("--labels-per-clip", type=int, default=3, help="k: labels each clip gets (default 3)")
    cr.add_argument("--order", choices=ORDERS, default="random", help="queue order (default random)")
    cr.add_argument("--config", help="dataset config")
    cr.add_argument("--split", default="train", help="dataset split (default train)")
    cr.add_argument("--media-column", action="append", help="dataset media column(s) (default audio)")
    cr.add_argument("--id-column", help="dataset column with the clip ids (default: the row number)")
    cr.add_argument("--description", help="a sentence for the dataset card")
    cr.add_argument("--seed", type=int, default=0, help="the random order's seed")
    la = cs.add_parser("label", help="save one annotator's label for a clip; prints the receipt id")
    la.add_argument("name")
    la.add_argument("--annotator", required=True)
    la.add_argument("--clip", required=True, help="the clip id")
    la.add_argument("--emotion", required=True, choices=ANSWERS)
    la.add_argument("--stress", type=int, choices=range(1, 6), help="1 (calm) .. 5 (very stressed)")
    for m in ("face", "voice", "words"):
        la.add_argument(f"--{m}", choices=emotions, help=f"what the {m} shows (optional)")
    la.add_argument("--note")
    la.add_argument("--blind", action="store_true", help="the model's answer was hidden")
    nx = cs.add_parser("next", help="the clip an annotator labels next")
    nx.add_argument("name")
    nx.add_argument("--annotator", required=True)
    pl = cs.add_parser("prelabel", help="run the model over the clips without a pre-label (resumable)")
    pl.add_argument("name")
    pl.add_argument("--model", help="checkpoint folder or Hub model id (default: the bundled model)")
    pl.add_argument("--num-proc", type=int, help="worker processes (datasets.map num_proc)")
    pl.add_argument("--limit", type=int, help="at most this many clips this run")
    st = cs.add_parser("stats", help="counts, Krippendorff's alpha, the model against the majority")
    st.add_argument("name")
    st.add_argument("--json", action="store_true")
    ex = cs.add_parser("export", help="a Hugging Face dataset folder, one row per clip, with a dataset card")
    ex.add_argument("name")
    ex.add_argument("out")
    ex.add_argument("--all-clips", action="store_true", help="include clips nobody labelled yet")
    pu = cs.add_parser("push", help="export and upload to a Hub dataset repo (private unless --public)")
    pu.add_argument("name")
    pu.add_argument("--repo", required=True)
    pu.add_argument("--public", action="store_true")
    er = cs.add_parser("erase", help="erase one annotation by its receipt id")
    er.add_argument("name")
    er.add_argument("receipt")
    li = cs.add_parser("list", help="the collections and their progress")
    table = ((cr, cmd_create), (la, cmd_label), (nx, cmd_next), (pl, cmd_prelabel), (st, cmd_stats),
             (ex, cmd_export), (pu, cmd_push), (er, cmd_erase), (li, cmd_list))
    for parser, func in table:
        parser.add_argument("--store", default=default_store(), help="the store folder (default: the app's)")
        parser.set_defaults(func=_guarded(func))


def main(argv: list[str] | None = None) -> int:
    """`python -m stresslab.collections.cli ACTION ...`."""
    return run_group("collections", register, argv)


if __name__ == "__main__":
    sys.exit(main())
