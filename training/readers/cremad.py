"""CREMA-D in its release layout -> clip records (video with sound from the .flv, audio from a .wav or .mp3)."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from stresslab.files import AUDIO_SUFFIXES, VIDEO_SUFFIXES, media_kind
from stresslab.labels import map_corpus_label
from training.clip_folder import SPLIT_NAMES, Corpus, clip_record

SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")  # ACTOR_SENTENCE_EMOTION_LEVEL


def read_cremad(src: Path) -> Iterator[dict]:
    """CREMA-D: ACTOR_SENTENCE_EMOTION_LEVEL.{flv,mp3,wav,...} anywhere under src, meta/ for the extras.

    A video file has sound (both `video` and `audio` point at it); an audio file is audio only. When one clip
    exists in several forms (the full release has AudioWAV/, AudioMP3/ and VideoFlash/), they make one record:
    video from the video file, audio from the audio file that comes first in stresslab.files.AUDIO_SUFFIXES
    (.wav before .mp3), else from the video.
    """
    forms: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(src.rglob("*")):
        if media_kind(p) in ("video", "audio") and NAME.match(p.stem) and p.is_file():
            forms[p.stem].append(p)
    if not forms:
        raise ValueError(f"{src} does not look like CREMA-D: expected clips named ACTOR_SENTENCE_EMOTION_LEVEL"
                         ".flv/.wav/.mp3 (e.g. 1001_DFA_ANG_XX.flv) in it or its subfolders, and optionally meta/")
    demographics = _csv_rows(src / "meta" / "VideoDemographics.csv", "ActorID")
    votes = _csv_rows(src / "meta" / "summaryTable.csv", "FileName")
    for stem, paths in forms.items():
        actor, sentence, code, level = NAME.match(stem).groups()
        emotion = map_corpus_label("cremad", code)
        if emotion is None:
            continue
        video = _first(paths, VIDEO_SUFFIXES)
        audio = _first(paths, AUDIO_SUFFIXES) or video
        extra: dict[str, object] = {"sentence": sentence, "intensity": level}
        if demographics is not None:
            d = demographics.get(actor, {})
            age = d.get("Age", "")
            extra.update(sex=d.get("Sex"), age=int(age) if age.isdigit() else None, race=d.get("Race"),
                         ethnicity=d.get("Ethnicity"))
        if votes is not None:  # what the crowd perceived (emotion code or ties like "N:D", and agreement in %)
            v = votes.get(stem, {})
            for mode, col in (("voice", "Voice"), ("face", "Face"), ("multimodal", "MultiModal")):
                extra[f"{mode}_vote"] = v.get(f"{col}Vote")
                extra[f"{mode}_level"] = _float_or_none(v.get(f"{col}Level"))
        yield clip_record(id=f"cremad/{stem}", video=video, audio=audio, text=SENTENCES.get(sentence),
                          emotion=emotion, speaker=actor, corpus="cremad", split=_split_from_path(paths[0], src),
                          extra=extra)


def _first(paths: list[Path], suffixes: tuple[str, ...]) -> Path | None:
    """The path whose suffix comes first in `suffixes`, or None when none has one of them."""
    found = [p for p in paths if p.suffix.lower() in suffixes]
    return min(found, key=lambda p: suffixes.index(p.suffix.lower())) if found else None


def _csv_rows(path: Path, key: str) -> dict[str, dict[str, str]] | None:
    """Rows of a CSV file by their `key` column, or None when the file is missing."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "NA") else None
    except ValueError:
        return None


def _split_from_path(path: Path, src: Path) -> str | None:
    """The split named by a folder between src and the file (e.g. src/train/x.wav -> "train"), or None."""
    for part in path.relative_to(src).parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return None


CREMAD = Corpus(
    read_cremad,
    title="CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset)",
    licence="Open Database License 1.0 (database) and Database Contents License 1.0 (contents); "
            "see meta/LICENSE.txt of the source.",
    attribution="Cao, Cooper, Keutmann, Gur, Nenkova and Verma, 'CREMA-D: Crowd-sourced Emotional Multimodal "
                "Actors Dataset', IEEE Transactions on Affective Computing, 2014.",
    dropped="nothing (its six emotions are ours)",
)
