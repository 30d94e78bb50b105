"""FER2013 face crops in class folders -> clip records with an image each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stresslab.files import media_kind
from stresslab.labels import CORPUS_LABELS, map_corpus_label
from training.clip_folder import SPLIT_NAMES, Corpus, clip_record

CLASSES = (*CORPUS_LABELS["fer2013"], "surprise")


def read_fer2013(src: Path) -> Iterator[dict]:
    """FER2013: SPLIT/CLASS/*.jpg for whichever split folders exist (train, val, test, ...), or CLASS/*.jpg with
    no split. Class folders: angry, disgust, fear, happy, neutral, sad, surprise; surprise is dropped."""
    split_dirs = [d for d in sorted(src.iterdir()) if d.is_dir() and d.name.lower() in SPLIT_NAMES] \
        if src.is_dir() else []
    roots = [(d, SPLIT_NAMES[d.name.lower()]) for d in split_dirs] or [(src, None)]
    found = 0
    for root, split in roots:
        for cls in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            if cls.name.lower() not in CLASSES:
                raise ValueError(f"{cls}: unknown FER2013 class folder; expected {', '.join(CLASSES)}")
            emotion = map_corpus_label("fer2013", cls.name.lower())
            for p in sorted(cls.iterdir()):
                if media_kind(p) != "image":
                    continue
                found += 1
                if emotion is not None:
                    yield clip_record(id=f"fer2013/{split or 'all'}/{cls.name.lower()}/{p.stem}", image=p,
                                      emotion=emotion, corpus="fer2013", split=split, extra={"class": cls.name})
    if not found:
        raise ValueError(f"{src} does not look like FER2013: expected SPLIT/CLASS/*.jpg (e.g. train/angry/x.jpg, "
                         f"split folders among {', '.join(SPLIT_NAMES)}) or CLASS/*.jpg")


FER2013 = Corpus(
    read_fer2013,
    title="FER2013 (Facial Expression Recognition 2013)",
    licence="No explicit licence: released for the ICML 2013 Challenges in Representation Learning; research use. "
            "A model card of a model trained on it must say so.",
    attribution="Goodfellow et al., 'Challenges in Representation Learning: A report on three machine learning "
                "contests', 2013.",
    dropped="surprise: no counterpart among the six emotions",
)
