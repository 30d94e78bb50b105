"""A corpus in its own layout -> the clip-folder format (the one owner of that format's writing side).

    python -m training.prepare CORPUS SRC OUT [--link]      CORPUS: cremad | emodb | goemotions | fer2013 | feedback

Clip folder: OUT/metadata.jsonl, one clip a line with the keys of FIELDS (null when absent), media under
OUT/media/ (copied, or symlinked with --link) with paths relative to OUT, and OUT/README.md (source, licence,
counts). It loads as a Hugging Face dataset: datasets.load_dataset("json", data_files="OUT/metadata.jsonl").
Labels are mapped onto the six emotions with stresslab.labels; classes with no counterpart are dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from stresslab.labels import map_corpus_label

FIELDS = ("id", "video", "audio", "image", "text", "emotion", "stress", "speaker", "corpus", "split", "extra")
SPLITS = ("train", "dev", "val", "valid", "test")

CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.",
    "WSI": "We'll stop in a couple of minutes.",
}
EMODB_MALE = {"03", "10", "11", "12", "15"}
LICENCES = {
    "cremad": "Open Database License 1.0 / Database Contents License 1.0. Attribution: CREMA-D, Cao et al., "
              "IEEE Trans. Affective Computing 2014.",
    "emodb": "CC0-1.0 as packaged by audEERING's audb. Attribution: Burkhardt et al., Interspeech 2005.",
    "goemotions": "Apache-2.0. Attribution: Demszky et al., ACL 2020.",
    "fer2013": "No explicit licence; research use. Cite Goodfellow et al., 'Challenges in Representation Learning: "
               "A report on three machine learning contests', 2013.",
    "feedback": "Corrections collected with StressLab; the consent flags of each record apply.",
}


def record(**kw) -> dict:
    """A metadata line with every field present."""
    rec = {k: None for k in FIELDS}
    rec.update(kw)
    rec["extra"] = rec["extra"] or {}
    return rec


def _need(path: Path, what: str) -> None:
    if not path.exists():
        raise SystemExit(f"error: {path} not found; expected {what}")


def read_cremad(src: Path) -> Iterator[tuple[dict, dict[str, Path]]]:
    """ACTOR_SENTENCE_EMOTION_LEVEL.{flv,mp4,wav,mp3}: .flv/.mp4 are video with sound, the others audio only."""
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".flv", ".mp4", ".wav", ".mp3")
                   and len(p.stem.split("_")) == 4)
    if not files:
        raise SystemExit(f"error: no CREMA-D clips (ACTOR_SENTENCE_EMOTION_LEVEL.flv/.wav/.mp3) under {src}")
    demo = _csv_by(src / "meta" / "VideoDemographics.csv", "ActorID")
    votes = _csv_by(src / "meta" / "summaryTable.csv", "FileName")
    for p in files:
        actor, sentence, emo, level = p.stem.split("_")
        emotion = map_corpus_label("cremad", emo)
        if emotion is None:
            continue
        extra = {"sentence": sentence, "intensity": level, "file": p.name}
        d = demo.get(actor, {})
        extra.update({k.lower(): v for k, v in d.items() if k != "ActorID"})
        v = votes.get(p.stem)
        if v:
            extra.update({"voice_vote": v["VoiceVote"], "face_vote": v["FaceVote"],
                          "multimodal_vote": v["MultiModalVote"]})
        kind = "video" if p.suffix.lower() in (".flv", ".mp4") else "audio"
        yield (record(id=f"cremad/{p.stem}", text=CREMAD_SENTENCES.get(sentence), emotion=emotion, speaker=actor,
                      corpus="cremad", split=_split_of(p, src), extra=extra),
               {kind: p, **({"audio": p} if kind == "video" else {})})


def read_emodb(src: Path) -> Iterator[tuple[dict, dict[str, Path]]]:
    """wav/SSTTTEV.wav: speaker (2 digits), text code (3), emotion letter, version; boredom (L) is dropped."""
    wav = src / "wav" if (src / "wav").is_dir() else src
    files = sorted(p for p in wav.glob("*.wav") if len(p.stem) == 7)
    if not files:
        raise SystemExit(f"error: no EmoDB files (e.g. wav/03a01Wa.wav) under {src}")
    for p in files:
        speaker, sentence, letter, version = p.stem[:2], p.stem[2:5], p.stem[5], p.stem[6]
        emotion = map_corpus_label("emodb", letter)
        if emotion is None:
            continue
        extra = {"sentence": sentence, "version": version, "sex": "male" if speaker in EMODB_MALE else "female"}
        yield (record(id=f"emodb/{p.stem}", emotion=emotion, speaker=speaker, corpus="emodb", extra=extra),
               {"audio": p})


def read_goemotions(src: Path) -> Iterator[tuple[dict, dict[str, Path]]]:
    """{train,dev,test}.tsv: text TAB label ids TAB comment id; rows mapping to exactly one emotion are kept."""
    _need(src / "labels.txt", "labels.txt (one label name a line) beside train/dev/test .tsv files")
    names = (src / "labels.txt").read_text().split()
    tsvs = [src / f"{s}.tsv" for s in SPLITS if (src / f"{s}.tsv").exists()]
    if not tsvs:
        raise SystemExit(f"error: no train.tsv/dev.tsv/test.tsv under {src}")
    for tsv in tsvs:
        with tsv.open(encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) < 3:
                    continue
                text, ids, cid = row[0], row[1], row[2]
                labels = [names[int(i)] for i in ids.split(",") if i.strip().isdigit() and int(i) < len(names)]
                mapped = {map_corpus_label("goemotions", name) for name in labels} - {None}
                if len(mapped) != 1:
                    continue
                yield (record(id=f"goemotions/{tsv.stem}/{cid}", text=text, emotion=mapped.pop(),
                              corpus="goemotions", split=tsv.stem, extra={"comment_id": cid, "labels": labels}), {})


def read_fer2013(src: Path) -> Iterator[tuple[dict, dict[str, Path]]]:
    """SPLIT/CLASS/*.jpg (or CLASS/*.jpg): 48x48 grayscale faces; surprise is dropped."""
    split_dirs = [d for d in sorted(src.iterdir()) if d.is_dir() and d.name in SPLITS] if src.is_dir() else []
    roots = [(d, d.name) for d in split_dirs] or [(src, None)]
    n = 0
    for root, split in roots:
        for cls in sorted(d for d in root.iterdir() if d.is_dir()):
            emotion = map_corpus_label("fer2013", cls.name)
            for p in sorted(cls.glob("*")):
                if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                    continue
                n += 1
                if emotion is not None:
                    yield (record(id=f"fer2013/{split or 'all'}/{cls.name}/{p.stem}", emotion=emotion,
                                  corpus="fer2013", split=split, extra={"class": cls.name}), {"image": p})
    if n == 0:
        raise SystemExit(f"error: no FER2013 images (SPLIT/CLASS/*.jpg) under {src}")


def read_feedback(src: Path | str) -> Iterator[tuple[dict, dict[str, Path]]]:
    """A StressLab correction store (folder) or its Hub dataset id: records with an emotion or a stress rating."""
    from stresslab.feedback import FeedbackStore

    path = Path(src)
    store = FeedbackStore(path) if path.is_dir() else FeedbackStore.from_hub(str(src), tempfile.mkdtemp())
    for r in store.records():
        if r.emotion is None and r.stress_rating is None:
            continue
        media = store.media_path(r)
        files = {r.media_kind: media} if media is not None and r.media_kind else {}
        if r.media_kind == "video" and media is not None:
            files["audio"] = media
        yield (record(id=f"feedback/{r.id}", text=r.transcript, emotion=r.emotion, stress=r.stress_rating,
                      corpus="feedback", extra={"created_utc": r.created_utc, "share": r.consent_share,
                                                "model_emotion": (r.model_output or {}).get("emotion")}), files)


READERS = {"cremad": read_cremad, "emodb": read_emodb, "goemotions": read_goemotions, "fer2013": read_fer2013,
           "feedback": read_feedback}


def prepare(corpus: str, src: str | Path, out: str | Path, link: bool = False, progress: bool = False) -> list[dict]:
    """Write the clip folder for `corpus` read from `src` into `out`; returns the records written."""
    if corpus not in READERS:
        raise SystemExit(f"error: unknown corpus {corpus!r}; expected one of {', '.join(READERS)}")
    src_path, out = Path(src), Path(out)
    if corpus != "feedback":
        _need(src_path, f"the {corpus} corpus in its own layout")
    (out / "media").mkdir(parents=True, exist_ok=True)
    items = READERS[corpus](src_path if corpus != "feedback" or src_path.exists() else str(src))
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"prepare {corpus}", unit="clip")
    records, copied = [], {}
    for rec, files in items:
        for kind, path in files.items():
            if path not in copied:
                copied[path] = _place(path, out / "media" / rec["id"].replace("/", "__"), link)
            rec[kind] = str(copied[path].relative_to(out))
        records.append(rec)
    _atomic_write(out / "metadata.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    _atomic_write(out / "README.md", _card(corpus, src, records))
    return records


def _place(src: Path, stem: Path, link: bool) -> Path:
    dest = stem.with_suffix(src.suffix.lower())
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    if link:
        os.symlink(src.resolve(), dest)
    else:
        shutil.copyfile(src, dest)
    return dest


def _atomic_write(path: Path, text: str) -> None:
    """Temp file + fsync + rename: a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _card(corpus: str, src, records: list[dict]) -> str:
    counts = Counter((r["split"] or "-", r["emotion"] or "-") for r in records)
    splits = sorted({s for s, _ in counts})
    emotions = sorted({e for _, e in counts})
    table = ["| split | " + " | ".join(emotions) + " | total |", "|" + " --- |" * (len(emotions) + 2)]
    for s in splits:
        row = [counts[(s, e)] for e in emotions]
        table.append(f"| {s} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    speakers = len({r["speaker"] for r in records if r["speaker"]})
    return (f"# {corpus} clip folder\n\nWritten by `python -m training.prepare {corpus} {src} OUT` from the corpus "
            f"in its own layout. {len(records)} clips, {speakers} speakers.\n\nLicence: {LICENCES[corpus]}\n\n"
            + "\n".join(table) + "\n")


def _csv_by(path: Path, key: str) -> dict[str, dict]:
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _split_of(path: Path, src: Path) -> str | None:
    parts = [p.lower() for p in path.relative_to(src).parts[:-1]]
    return next((p for p in parts if p in SPLITS), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.prepare", description=__doc__.splitlines()[0])
    p.add_argument("corpus", choices=sorted(READERS))
    p.add_argument("src", help="the corpus folder in its own layout (feedback: a store folder or Hub dataset id)")
    p.add_argument("out", help="the clip folder to write")
    p.add_argument("--link", action="store_true", help="symlink media instead of copying")
    args = p.parse_args(argv)
    records = prepare(args.corpus, args.src, args.out, link=args.link, progress=True)
    print(f"wrote {len(records)} clips to {args.out}/metadata.jsonl", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
