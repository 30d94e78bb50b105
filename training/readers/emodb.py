"""EmoDB (Berlin Database of Emotional Speech) in its own layout -> clip records."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from stresslab.labels import map_corpus_label
from training.clip_folder import Corpus, clip_record

NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")  # speaker, sentence, emotion letter, version
SEX = {**dict.fromkeys(("03", "10", "11", "12", "15"), "male"),
       **dict.fromkeys(("08", "09", "13", "14", "16"), "female")}


def read_emodb(src: Path) -> Iterator[dict]:
    """EmoDB: wav/SSTTTEV.wav (speaker, sentence code, emotion letter, version); boredom (L) is dropped.

    erkennung.txt, when present, adds the original perception test's recognition and naturalness rates (%).
    """
    files = sorted(p for p in (src / "wav").glob("*.wav") if NAME.match(p.stem))
    if not files:
        raise ValueError(f"{src} does not look like EmoDB: expected wav/ holding files named speaker + sentence + "
                         "emotion letter + version, e.g. wav/03a01Wa.wav")
    ratings = _ratings(src / "erkennung.txt")
    for p in files:
        speaker, sentence, letter, version = NAME.match(p.stem).groups()
        emotion = map_corpus_label("emodb", letter)
        if emotion is None:
            continue
        recognised, natural = ratings.get(p.stem, (None, None))
        extra = {"sex": SEX.get(speaker), "sentence": sentence, "version": version, "letter": letter,
                 "recognition_pct": recognised, "naturalness_pct": natural}
        yield clip_record(id=f"emodb/{p.stem}", audio=p, emotion=emotion, speaker=speaker, corpus="emodb",
                          extra=extra)


def _ratings(path: Path) -> dict[str, tuple[float, float]]:
    """erkennung.txt: file, recognition %, naturalness % (decimal commas, padded with stray bytes)."""
    if not path.is_file():
        return {}
    pattern = re.compile(r"(\d{2}[a-z]\d{2}[A-Z][a-z])\.wav\s+(\d+(?:,\d+)?)\D+?(\d+(?:,\d+)?)")
    text = path.read_bytes().decode("latin-1")
    return {m[1]: (float(m[2].replace(",", ".")), float(m[3].replace(",", "."))) for m in pattern.finditer(text)}


EMODB = Corpus(
    read_emodb,
    title="Berlin Database of Emotional Speech (EmoDB)",
    licence="CC0-1.0 / unrestricted, as declared by audEERING's audb packaging.",
    attribution="Burkhardt, Paeschke, Rolfes, Sendlmeier and Weiss, 'A Database of German Emotional Speech', "
                "Interspeech 2005.",
    dropped="boredom (L): no counterpart among the six emotions",
)
