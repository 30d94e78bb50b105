"""GoEmotions (Reddit comments, Ekman grouping) in its own layout -> clip records with text only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stresslab.labels import map_corpus_label
from training.clip_folder import SPLITS, Corpus, clip_record


def read_goemotions(src: Path) -> Iterator[dict]:
    """GoEmotions: {train,dev,val,test}.tsv (whichever exist) + labels.txt; text TAB label ids TAB comment id.

    A row is kept when its labels, mapped, give exactly one emotion: "joy,surprise" -> happy (surprise has no
    counterpart), surprise alone or "anger,joy" are dropped.
    """
    tsvs = [(name, src / f"{name}.tsv") for name in SPLITS if (src / f"{name}.tsv").is_file()]
    if not (src / "labels.txt").is_file() or not tsvs:
        raise ValueError(f"{src} does not look like GoEmotions: expected labels.txt (one label name a line) and "
                         "train.tsv/dev.tsv/test.tsv (text TAB comma-separated label ids TAB comment id)")
    names = [line.strip() for line in (src / "labels.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    for split, tsv in tsvs:
        with tsv.open(encoding="utf-8", newline="") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                cols = line.split("\t")
                ids = cols[1].split(",") if len(cols) == 3 else []
                if not ids or not all(i.strip().isdigit() and int(i) < len(names) for i in ids):
                    raise ValueError(f"{tsv}:{n}: expected text TAB comma-separated label ids (0-{len(names) - 1}, "
                                     f"into labels.txt) TAB comment id, got {line[:80]!r}")
                labels = [names[int(i)] for i in ids]
                mapped = {map_corpus_label("goemotions", name) for name in labels} - {None}
                if len(mapped) != 1:
                    continue
                yield clip_record(id=f"goemotions/{split}/{cols[2]}", text=cols[0], emotion=mapped.pop(),
                                  corpus="goemotions", split=split, extra={"comment_id": cols[2], "labels": labels})


GOEMOTIONS = Corpus(
    read_goemotions,
    title="GoEmotions (Reddit comments), Ekman grouping",
    licence="Apache-2.0.",
    attribution="Demszky, Movshovitz-Attias, Ko, Cowen, Nemade and Ravi, 'GoEmotions: A Dataset of Fine-Grained "
                "Emotions', ACL 2020.",
    dropped="surprise (no counterpart); rows whose labels map to no emotion or to more than one",
)
