"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) -> clip records, speech only.

File name = modality-channel-emotion-intensity-statement-repetition-actor, e.g. Actor_07/03-01-05-02-01-01-07.flac:
modality 01 audio-video, 02 video only, 03 audio only; channel 01 speech, 02 song; emotion 01 neutral, 02 calm,
03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised; intensity 01 normal, 02 strong; statement 01
"Kids are talking by the door", 02 "Dogs are sitting by the door"; repetition 01/02; actor 01-24, odd = male.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from stresslab.files import media_kind
from stresslab.labels import map_corpus_label
from training.clip_folder import Corpus, clip_record

NAME = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d{2})$")
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
INTENSITY = {"01": "normal", "02": "strong"}


def read_ravdess(src: Path) -> Iterator[dict]:
    """RAVDESS speech clips anywhere under src (Actor_XX/ folders in the release). The label comes from the file
    name; calm (02) and surprised (08) have no counterpart and are dropped, and so is song (channel 02). Speaker =
    actor; intensity, statement, repetition and sex go into `extra`; text = the statement spoken."""
    files = sorted(p for p in src.rglob("*") if NAME.match(p.stem) and media_kind(p) in ("audio", "video")
                   and p.is_file())
    if not files:
        raise ValueError(f"{src} does not look like RAVDESS: expected files named modality-channel-emotion-"
                         "intensity-statement-repetition-actor, e.g. Actor_07/03-01-05-02-01-01-07.flac")
    for p in files:
        modality, channel, code, intensity, statement, repetition, actor = NAME.match(p.stem).groups()
        emotion = map_corpus_label("ravdess", code)
        if channel != "01" or emotion is None:
            continue
        video = p if modality in ("01", "02") else None
        audio = p if modality in ("01", "03") else None
        extra = {"intensity": INTENSITY[intensity], "statement": statement, "repetition": repetition,
                 "sex": "male" if int(actor) % 2 else "female", "modality": modality}
        yield clip_record(id=f"ravdess/{p.stem}", video=video, audio=audio, text=STATEMENTS[statement],
                          emotion=emotion, speaker=actor, corpus="ravdess", extra=extra)


RAVDESS = Corpus(
    read_ravdess,
    title="RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song), speech",
    licence="CC BY-NC-SA 4.0 (non-commercial, share-alike): a model trained on it is for non-commercial use, and "
            "its model card must say so.",
    attribution="Livingstone and Russo, 'The Ryerson Audio-Visual Database of Emotional Speech and Song "
                "(RAVDESS)', PLoS ONE 13(5): e0196391, 2018.",
    dropped="calm (02) and surprised (08): no counterpart among the six emotions; song (channel 02)",
)
