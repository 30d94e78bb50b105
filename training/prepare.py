"""A corpus in its own layout -> the clip-folder format (the one writer of that format).

    python -m training.prepare CORPUS SRC OUT [--link]     CORPUS: cremad | emodb | goemotions | fer2013 | feedback

Clip folder:
  OUT/metadata.jsonl   one clip a line, every key of FIELDS present (null when absent); media paths relative to OUT
  OUT/media/<id>.<ext> the clip's media, copied (or symlinked to the source with --link)
  OUT/README.md        source corpus, licence, attribution, what was dropped, counts per split and emotion
It loads as a Hugging Face dataset: datasets.load_dataset("json", data_files="OUT/metadata.jsonl"), or
training.data.load_clip_folder_dataset(OUT).

One reader per corpus (READERS) yields record dicts whose media keys hold *source* paths; one writer
(write_clip_folder) places the media and writes the metadata last, atomically (temp file + fsync + os.replace),
so a crash leaves the previous metadata.jsonl or the new one, never half of one. Labels are mapped onto the six
emotions with stresslab.labels.map_corpus_label; a class with no counterpart is dropped, never guessed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from stresslab.files import write_atomic
from stresslab.labels import CORPUS_LABELS, EMOTIONS, map_corpus_label

FIELDS = ("id", "video", "audio", "image", "text", "emotion", "stress", "speaker", "corpus", "split", "extra")
MEDIA_KEYS = ("video", "audio", "image")
SPLITS = ("train", "dev", "val", "test")
# Split folder / file names as they occur in the wild -> the split written ("dev" stays "dev", as the source says).
SPLIT_NAMES = {"train": "train", "training": "train", "dev": "dev", "val": "val", "valid": "val",
               "validation": "val", "test": "test"}

# What each corpus is and under which terms it may be used (from ../shared/data/README.md).
SOURCES: dict[str, dict[str, str]] = {
    "cremad": {
        "title": "CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset)",
        "licence": "Open Database License 1.0 (database) and Database Contents License 1.0 (contents); "
                   "see meta/LICENSE.txt of the source.",
        "attribution": "Cao, Cooper, Keutmann, Gur, Nenkova and Verma, 'CREMA-D: Crowd-sourced Emotional Multimodal "
                       "Actors Dataset', IEEE Transactions on Affective Computing, 2014.",
        "dropped": "nothing (its six emotions are ours)",
    },
    "emodb": {
        "title": "Berlin Database of Emotional Speech (EmoDB)",
        "licence": "CC0-1.0 / unrestricted, as declared by audEERING's audb packaging.",
        "attribution": "Burkhardt, Paeschke, Rolfes, Sendlmeier and Weiss, 'A Database of German Emotional Speech', "
                       "Interspeech 2005.",
        "dropped": "boredom (L): no counterpart among the six emotions",
    },
    "goemotions": {
        "title": "GoEmotions (Reddit comments), Ekman grouping",
        "licence": "Apache-2.0.",
        "attribution": "Demszky, Movshovitz-Attias, Ko, Cowen, Nemade and Ravi, 'GoEmotions: A Dataset of "
                       "Fine-Grained Emotions', ACL 2020.",
        "dropped": "surprise (no counterpart); rows whose labels map to no emotion or to more than one",
    },
    "fer2013": {
        "title": "FER2013 (Facial Expression Recognition 2013)",
        "licence": "No explicit licence: released for the ICML 2013 Challenges in Representation Learning; "
                   "research use. A model card of a model trained on it must say so.",
        "attribution": "Goodfellow et al., 'Challenges in Representation Learning: A report on three machine "
                       "learning contests', 2013.",
        "dropped": "surprise: no counterpart among the six emotions",
    },
    "feedback": {
        "title": "StressLab corrections (the app's feedback store)",
        "licence": "Collected with StressLab under each record's consent flags (extra.consent_keep_media, "
                   "extra.consent_share); media exist only where consent_keep_media was given.",
        "attribution": "The people who sent the corrections.",
        "dropped": "records with neither an emotion nor a stress rating",
    },
}

CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")  # ACTOR_SENTENCE_EMOTION_LEVEL
CREMAD_VIDEO = (".flv", ".mp4")
CREMAD_AUDIO = (".wav", ".mp3")  # in order of preference when a clip exists in several forms

EMODB_NAME = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])$")  # speaker, sentence, emotion letter, version
EMODB_SEX = {**dict.fromkeys(("03", "10", "11", "12", "15"), "male"),
             **dict.fromkeys(("08", "09", "13", "14", "16"), "female")}

FER_CLASSES = (*CORPUS_LABELS["fer2013"], "surprise")
IMAGE_EXT = (".jpg", ".jpeg", ".png")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def clip_record(**fields: object) -> dict:
    """A metadata line with every key of FIELDS present (None when not given; `extra` defaults to {})."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown clip fields {sorted(unknown)}; expected some of {', '.join(FIELDS)}")
    rec = dict.fromkeys(FIELDS)
    rec.update(fields)
    rec["extra"] = rec["extra"] or {}
    return rec


# ---------------------------------------------------------------------------------------------------------------
# readers: one per corpus, each yields clip records with media keys pointing at the source files


def read_cremad(src: Path) -> Iterator[dict]:
    """CREMA-D: ACTOR_SENTENCE_EMOTION_LEVEL.{flv,mp3,wav} anywhere under src, meta/ for the extras.

    A .flv is video with sound (both `video` and `audio` point at it); .wav/.mp3 are audio only. When one clip
    exists in several forms (the full release has AudioWAV/, AudioMP3/ and VideoFlash/), they make one record:
    video from the .flv, audio from the .wav, else the .mp3, else the .flv.
    """
    forms: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(src.rglob("*")):
        if p.suffix.lower() in CREMAD_VIDEO + CREMAD_AUDIO and CREMAD_NAME.match(p.stem) and p.is_file():
            forms[p.stem].append(p)
    if not forms:
        raise ValueError(f"{src} does not look like CREMA-D: expected clips named ACTOR_SENTENCE_EMOTION_LEVEL"
                         ".flv/.wav/.mp3 (e.g. 1001_DFA_ANG_XX.flv) in it or its subfolders, and optionally meta/")
    demographics = _csv_rows(src / "meta" / "VideoDemographics.csv", "ActorID")
    votes = _csv_rows(src / "meta" / "summaryTable.csv", "FileName")
    for stem, paths in forms.items():
        actor, sentence, code, level = CREMAD_NAME.match(stem).groups()
        emotion = map_corpus_label("cremad", code)
        if emotion is None:
            continue
        by_ext = {p.suffix.lower(): p for p in paths}
        video = next((by_ext[e] for e in CREMAD_VIDEO if e in by_ext), None)
        audio = next((by_ext[e] for e in CREMAD_AUDIO if e in by_ext), video)
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
        yield clip_record(id=f"cremad/{stem}", video=video, audio=audio, text=CREMAD_SENTENCES.get(sentence),
                          emotion=emotion, speaker=actor, corpus="cremad", split=_split_from_path(paths[0], src),
                          extra=extra)


def read_emodb(src: Path) -> Iterator[dict]:
    """EmoDB: wav/SSTTTEV.wav (speaker, sentence code, emotion letter, version); boredom (L) is dropped.

    erkennung.txt, when present, adds the original perception test's recognition and naturalness rates (%).
    """
    files = sorted(p for p in (src / "wav").glob("*.wav") if EMODB_NAME.match(p.stem))
    if not files:
        raise ValueError(f"{src} does not look like EmoDB: expected wav/ holding files named speaker + sentence + "
                         "emotion letter + version, e.g. wav/03a01Wa.wav")
    ratings = _emodb_ratings(src / "erkennung.txt")
    for p in files:
        speaker, sentence, letter, version = EMODB_NAME.match(p.stem).groups()
        emotion = map_corpus_label("emodb", letter)
        if emotion is None:
            continue
        recognised, natural = ratings.get(p.stem, (None, None))
        extra = {"sex": EMODB_SEX.get(speaker), "sentence": sentence, "version": version, "letter": letter,
                 "recognition_pct": recognised, "naturalness_pct": natural}
        yield clip_record(id=f"emodb/{p.stem}", audio=p, emotion=emotion, speaker=speaker, corpus="emodb",
                          extra=extra)


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


def read_fer2013(src: Path) -> Iterator[dict]:
    """FER2013: SPLIT/CLASS/*.jpg for whichever split folders exist (train, val, test, ...), or CLASS/*.jpg with
    no split. Class folders: angry, disgust, fear, happy, neutral, sad, surprise; surprise is dropped."""
    split_dirs = [d for d in sorted(src.iterdir()) if d.is_dir() and d.name.lower() in SPLIT_NAMES] \
        if src.is_dir() else []
    roots = [(d, SPLIT_NAMES[d.name.lower()]) for d in split_dirs] or [(src, None)]
    found = 0
    for root, split in roots:
        for cls in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            if cls.name.lower() not in FER_CLASSES:
                raise ValueError(f"{cls}: unknown FER2013 class folder; expected {', '.join(FER_CLASSES)}")
            emotion = map_corpus_label("fer2013", cls.name.lower())
            for p in sorted(cls.iterdir()):
                if p.suffix.lower() not in IMAGE_EXT:
                    continue
                found += 1
                if emotion is not None:
                    yield clip_record(id=f"fer2013/{split or 'all'}/{cls.name.lower()}/{p.stem}", image=p,
                                      emotion=emotion, corpus="fer2013", split=split, extra={"class": cls.name})
    if not found:
        raise ValueError(f"{src} does not look like FER2013: expected SPLIT/CLASS/*.jpg (e.g. train/angry/x.jpg, "
                         f"split folders among {', '.join(SPLIT_NAMES)}) or CLASS/*.jpg")


def read_feedback(src: Path) -> Iterator[dict]:
    """A StressLab correction store (records/*.jsonl + media/): records with an emotion or a stress rating."""
    if not (src / "records").is_dir():
        raise ValueError(f"{src} is not a StressLab correction store: expected a folder with records/*.jsonl "
                         "(and media/), or a Hugging Face dataset repo id such as owner/corrections")
    from stresslab.corrections.store import FeedbackStore
    from stresslab.files import MEDIA_KINDS

    store = FeedbackStore(src)
    for r in store.records():
        if r.emotion is None and r.stress_rating is None:
            continue
        media = store.media_path(r)
        kind = MEDIA_KINDS.get(media.suffix.lower()) if media is not None else None
        extra = {"created_utc": r.created_utc, "note": r.note or "", "consent_keep_media": r.consent_keep_media,
                 "consent_share": r.consent_share, "app_version": getattr(r, "app_version", None),
                 "model_version": getattr(r, "model_version", None),
                 # a JSON string: its shape varies between app versions, and Arrow wants one type a column
                 "model_output": json.dumps(r.model_output or {}, sort_keys=True)}
        yield clip_record(id=f"feedback/{r.id}", video=media if kind == "video" else None,
                          audio=media if kind in ("video", "audio") else None,
                          image=media if kind == "image" else None, text=r.transcript or None, emotion=r.emotion,
                          stress=None if r.stress_rating is None else float(r.stress_rating), corpus="feedback",
                          extra=extra)


READERS: dict[str, Callable[[Path], Iterator[dict]]] = {
    "cremad": read_cremad, "emodb": read_emodb, "goemotions": read_goemotions, "fer2013": read_fer2013,
    "feedback": read_feedback,
}


# ---------------------------------------------------------------------------------------------------------------
# the writer


def prepare(corpus: str, src: str | Path, out: str | Path, link: bool = False,
            progress: Callable[[Iterable[dict]], Iterable[dict]] | None = None) -> list[dict]:
    """Read `corpus` from `src` (its own layout) and write the clip folder `out`; returns the records written.

    feedback: src is a store folder, or a Hugging Face dataset repo id (downloaded into out/.hub-snapshot).
    progress wraps the record iterator (the CLI passes tqdm). Raises ValueError when src is not that corpus.
    """
    if corpus not in READERS:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(READERS)}")
    out = Path(out)
    source = Path(src)
    if corpus == "feedback" and not source.exists() and HUB_ID.match(str(src)):
        from stresslab.corrections.store import FeedbackStore

        source = FeedbackStore.from_hub(str(src), out / ".hub-snapshot").root
    elif not source.is_dir():
        raise ValueError(f"{src} is not a folder; expected the {corpus} corpus in its own layout"
                         + (" (or a Hugging Face dataset repo id)" if corpus == "feedback" else ""))
    records = READERS[corpus](source)
    return write_clip_folder(progress(records) if progress else records, out, corpus, str(src), link=link)


def write_clip_folder(records: Iterable[dict], out: str | Path, corpus: str, source: str = "",
                      link: bool = False) -> list[dict]:
    """Place each record's media under out/media/ and write out/metadata.jsonl (last, atomically) + README.md.

    Media keys of the incoming records are source paths; in the written ones they are relative to `out`.
    """
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    written: list[dict] = []
    seen: set[str] = set()
    for rec in records:
        _validate(rec, seen)
        placed: dict[Path, str] = {}  # one copy of a file that serves as both video and audio
        for key in MEDIA_KEYS:
            if rec[key] is not None:
                path = Path(rec[key])
                if path not in placed:
                    placed[path] = _place(path, out, rec["id"], link)
                rec[key] = placed[path]
        written.append(rec)
    _atomic_write(out / "metadata.jsonl", (json.dumps(r, ensure_ascii=False) + "\n" for r in written))
    _atomic_write(out / "README.md", [_readme(corpus, source, written, link)])
    return written


def _validate(rec: dict, seen: set[str]) -> None:
    if set(rec) != set(FIELDS):
        raise ValueError(f"record {rec.get('id')!r}: expected exactly the keys {', '.join(FIELDS)}")
    parts = str(rec["id"]).split("/")
    if not rec["id"] or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"clip id {rec['id']!r}: expected corpus/name, usable as a relative path")
    if rec["id"] in seen:
        raise ValueError(f"duplicate clip id {rec['id']!r}: two source files describe the same clip")
    seen.add(rec["id"])
    if rec["emotion"] is not None and rec["emotion"] not in EMOTIONS:
        raise ValueError(f"{rec['id']}: emotion {rec['emotion']!r}, expected one of {', '.join(EMOTIONS)} or None")
    if rec["stress"] is not None and not 1 <= rec["stress"] <= 5:
        raise ValueError(f"{rec['id']}: stress {rec['stress']!r}, expected a rating from 1 to 5 or None")
    if rec["split"] not in (*SPLITS, None):
        raise ValueError(f"{rec['id']}: split {rec['split']!r}, expected one of {', '.join(SPLITS)} or None")


def _place(src: Path, out: Path, clip_id: str, link: bool) -> str:
    """Copy (or symlink) src to out/media/<clip id><suffix>, atomically; returns the path relative to out."""
    if not src.is_file():
        raise ValueError(f"media file {src} not found")
    rel = Path("media", *clip_id.split("/")).with_name(clip_id.split("/")[-1] + src.suffix.lower())
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        if link:
            tmp.symlink_to(src.resolve())
        else:
            with src.open("rb") as fi, tmp.open("wb") as fo:
                while chunk := fi.read(1 << 20):
                    fo.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rel.as_posix()


def _atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """All of the text or none: stresslab's atomic writer (temp file, fsync, os.replace, folder fsync)."""
    write_atomic(path, path.parent, "".join(chunks).encode("utf-8"))


def _readme(corpus: str, source: str, records: list[dict], link: bool) -> str:
    info = SOURCES[corpus]
    counts = Counter((r["split"] or "(none)", r["emotion"] or "(none)") for r in records)
    splits = sorted({s for s, _ in counts}, key=lambda s: (SPLITS + ("(none)",)).index(s))
    columns = [*EMOTIONS, *(["(none)"] if any(r["emotion"] is None for r in records) else [])]
    table = ["| split | " + " | ".join(columns) + " | total |", "| --- " * (len(columns) + 2) + "|"]
    for s in splits:
        row = [counts[(s, e)] for e in columns]
        table.append(f"| {s} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    row = [sum(counts[(s, e)] for s in splits) for e in columns]
    table.append("| all | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    speakers = len({r["speaker"] for r in records if r["speaker"] is not None})
    rated = sum(r["stress"] is not None for r in records)
    media = Counter(k for r in records for k in MEDIA_KEYS if r[k] is not None)
    return "\n".join([
        f"# {info['title']}: clip folder", "",
        f"Written by `python -m training.prepare {corpus} {source} OUT{' --link' if link else ''}` from the corpus "
        f"in its own layout; media {'symlinked to the source' if link else 'copied'} under media/.", "",
        f"- Licence: {info['licence']}",
        f"- Attribution: {info['attribution']}",
        f"- Labels: mapped onto the six emotions ({', '.join(EMOTIONS)}); dropped: {info['dropped']}.",
        f"- {len(records)} clips, {speakers} speakers, {rated} with a stress rating; media: "
        + (", ".join(f"{media[k]} {k}" for k in MEDIA_KEYS if media[k]) or "none"), "",
        "Clips per split and emotion:", "", *table, "",
    ])


def _csv_rows(path: Path, key: str) -> dict[str, dict[str, str]] | None:
    """Rows of a CSV file by their `key` column, or None when the file is missing."""
    import csv

    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "NA") else None
    except ValueError:
        return None


def _emodb_ratings(path: Path) -> dict[str, tuple[float, float]]:
    """erkennung.txt: file, recognition %, naturalness % (decimal commas, padded with stray bytes)."""
    if not path.is_file():
        return {}
    pattern = re.compile(r"(\d{2}[a-z]\d{2}[A-Z][a-z])\.wav\s+(\d+(?:,\d+)?)\D+?(\d+(?:,\d+)?)")
    text = path.read_bytes().decode("latin-1")
    return {m[1]: (float(m[2].replace(",", ".")), float(m[3].replace(",", "."))) for m in pattern.finditer(text)}


def _split_from_path(path: Path, src: Path) -> str | None:
    """The split named by a folder between src and the file (e.g. src/train/x.wav -> "train"), or None."""
    for part in path.relative_to(src).parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line: python -m training.prepare CORPUS SRC OUT [--link]."""
    parser = argparse.ArgumentParser(prog="python -m training.prepare",
                                     description="Write a corpus, read in its own layout, as a StressLab clip folder.")
    parser.add_argument("corpus", choices=list(READERS))
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
