"""A StressLab annotation collection, as `stresslab collections export` writes it -> clip records: the majority
emotion, the annotators' soft label distribution over the six emotions (extra.soft_label) and the mean stress
rating; the pre-label's transcript as the words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stresslab.labels import EMOTIONS
from training.clip_folder import Corpus, clip_record


def read_collection(src: Path) -> Iterator[dict]:
    """An exported collection folder (README.md, data/*.parquet, media/): one record per clip with at least one
    emotion among the six or a stress rating. soft_label: the share of each emotion among the answers that named
    one ("none of these" and "can't tell" left out), [] when no answer named one."""
    files = sorted((src / "data").glob("*.parquet"))
    if not files:
        raise ValueError(f"{src} is not an exported StressLab collection: expected data/*.parquet and media/ "
                         "(write one with `stresslab collections export NAME OUT`)")
    import pyarrow.parquet as pq

    for f in files:
        for row in pq.read_table(f).to_pylist():
            shares = list(row["soft_label"][: len(EMOTIONS)])
            total = sum(shares)
            ratings = row["stress_ratings"] or []
            if total <= 0 and not ratings:
                continue
            media, kind = src / row["file"], row["media_kind"]
            if not media.is_file():
                raise ValueError(f"{src}: clip {row['clip_id']} has no media at {row['file']}")
            extra = {"soft_label": [s / total for s in shares] if total > 0 else [], "n_labels": row["n_labels"],
                     "answers": [a["answer"] for a in row["annotations"]], "model_emotion": row["model_emotion"]}
            yield clip_record(id=f"collection/{row['clip_id']}", video=media if kind == "video" else None,
                              audio=media if kind in ("video", "audio") else None,
                              image=media if kind == "image" else None, text=row.get("transcript") or None,
                              emotion=row["majority"] if row["majority"] in EMOTIONS else None,
                              stress=sum(ratings) / len(ratings) if ratings else None, corpus="collection",
                              extra=extra)


COLLECTION = Corpus(
    read_collection,
    title="A StressLab annotation collection (several annotators per clip)",
    licence="The consent basis its owner stated, in the export's README.md; the media keep their own licence.",
    attribution="The collection's annotators and the people in its clips.",
    dropped="clips whose answers were all 'none of these' or 'can't tell' and carry no stress rating",
)
