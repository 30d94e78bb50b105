"""A corpus in its own layout -> a clip folder (training.clip_folder describes the format).

    python -m training.prepare CORPUS SRC OUT [--link]
        CORPUS: cremad | emodb | ravdess | goemotions | fer2013 | feedback | collection (`stresslab collections export`)

One reader per corpus (training.readers) yields records whose media keys hold *source* paths; the one writer
(training.clip_folder.write_clip_folder) places the media and writes the metadata last, atomically. Labels are
mapped onto the six emotions with stresslab.labels.map_corpus_label; a class with no counterpart is dropped, never
guessed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from training.clip_folder import write_clip_folder
from training.readers import CORPORA

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def prepare(corpus: str, src: str | Path, out: str | Path, link: bool = False,
            progress: Callable[[Iterable[dict]], Iterable[dict]] | None = None) -> list[dict]:
    """Read `corpus` from `src` (its own layout) and write the clip folder `out`; returns the records written.

    feedback: src is a store folder, or a Hugging Face dataset repo id (downloaded into out/.hub-snapshot).
    progress wraps the record iterator (the CLI passes tqdm). Raises ValueError when src is not that corpus.
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    out = Path(out)
    source = Path(src)
    if corpus == "feedback" and not source.exists() and HUB_ID.match(str(src)):
        from stresslab.corrections.store import FeedbackStore

        source = FeedbackStore.from_hub(str(src), out / ".hub-snapshot").root
    elif not source.is_dir():
        raise ValueError(f"{src} is not a folder; expected the {corpus} corpus in its own layout"
                         + (" (or a Hugging Face dataset repo id)" if corpus == "feedback" else ""))
    about = CORPORA[corpus]
    records = about.read(source)
    return write_clip_folder(progress(records) if progress else records, out, corpus, about, str(src), link=link)


def main(argv: list[str] | None = None) -> int:
    """The command line: python -m training.prepare CORPUS SRC OUT [--link]."""
    parser = argparse.ArgumentParser(prog="python -m training.prepare",
                                     description="Write a corpus, read in its own layout, as a StressLab clip folder.")
    parser.add_argument("corpus", choices=list(CORPORA))
    parser.add_argument("src", help="the corpus folder in its own layout (feedback: a store folder or Hub repo id)")
    parser.add_argument("out", help="the clip folder to write")
    parser.add_argument("--link", action="store_true", help="symlink media to the source instead of copying")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    try:
        records = prepare(args.corpus, args.src, args.out, link=args.link,
                          progress=lambda it: tqdm(it, desc=f"prepare {args.corpus}", unit="clip"))
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    print(f"wrote {len(records)} clips to {Path(args.out) / 'metadata.jsonl'} (counts in README.md)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
