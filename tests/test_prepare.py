"""training.prepare on each corpus in ../shared/data: counts, labels, splits, speakers, media, HF loading."""

import json
import shutil
from collections import Counter

import pytest
from conftest import CREMAD, EMODB, FER, GOEMOTIONS

from training.data import DEFAULT_SPLITS, load_clip_folder_dataset, read_clip_folder, speaker_split
from training.prepare import FIELDS, prepare


def prepared(corpus, src, out, n):
    """Run prepare, then check the folder: n records, every field, labels, media present, loads as a dataset."""
    prepare(corpus, src, out)
    return _check(out, n)


def _check(out, n):
    recs = read_clip_folder(out)
    assert len(recs) == n
    for r in recs:
        assert set(r) == set(FIELDS) and r["emotion"] in ("anger", "disgust", "fear", "happy", "neutral", "sad")
        for key in ("video", "audio", "image"):
            if r[key]:
                from pathlib import Path

                assert Path(r[key]).exists()
    assert len(load_clip_folder_dataset(out)) == n
    return recs


def test_emodb(tmp_path):
    letters = Counter(p.stem[5] for p in (EMODB / "wav").glob("*.wav"))
    recs = prepared("emodb", EMODB, tmp_path / "emodb", sum(letters.values()) - letters["L"])
    recs = read_clip_folder(tmp_path / "emodb")
    assert Counter(r["emotion"] for r in recs)["anger"] == letters["W"]
    assert {r["speaker"] for r in recs} == {"03", "08", "09", "10", "11", "12", "13", "14"}
    assert all(r["split"] is None for r in recs)
    parts = speaker_split(recs, DEFAULT_SPLITS["emodb"]["val"], DEFAULT_SPLITS["emodb"]["test"])
    speakers = {k: {r["speaker"] for r in v} for k, v in parts.items()}
    assert speakers["val"] == {"09", "10"} and speakers["test"] == {"03", "08"}
    assert not (speakers["train"] & (speakers["val"] | speakers["test"]))
    assert recs[0]["extra"]["sex"] in ("male", "female")


def test_cremad(tmp_path):
    recs = prepared("cremad", CREMAD, tmp_path / "c", 12)
    videos = [r for r in recs if r["video"]]
    assert len(videos) == 6 and all(r["audio"] == r["video"] for r in videos)
    assert Counter(r["emotion"] for r in recs) == {e: 2 for e in ("anger", "disgust", "fear", "happy", "neutral",
                                                                   "sad")}
    r = next(r for r in recs if r["speaker"] == "1001")
    assert r["text"] == "Don't forget a jacket." and r["extra"]["sex"] == "Male" and r["extra"]["voice_vote"]


def test_cremad_without_meta_and_fewer_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in list(CREMAD.glob("1002_*.mp3"))[:3]:
        shutil.copy(p, src)
    recs = prepared("cremad", src, tmp_path / "out", 3)
    assert all(r["extra"].get("sex") is None for r in recs)


def test_goemotions_rules_and_real_dev(tmp_path):
    src = tmp_path / "go"
    src.mkdir()
    shutil.copy(GOEMOTIONS / "labels.txt", src)
    (src / "train.tsv").write_text("I love it\t3\ta\nwow\t6\tb\nyay wow\t3,6\tc\nmixed\t0,3\td\nmeh\t4\te\n")
    (src / "test.tsv").write_text("so sad\t5\tf\n")
    recs = prepared("goemotions", src, tmp_path / "out", 4)
    assert [(r["text"], r["emotion"], r["split"]) for r in recs] == [
        ("I love it", "happy", "train"), ("yay wow", "happy", "train"), ("meh", "neutral", "train"),
        ("so sad", "sad", "test")]
    real = tmp_path / "real"
    real.mkdir()
    for f in ("labels.txt", "dev.tsv"):
        shutil.copy(GOEMOTIONS / f, real)
    names = (GOEMOTIONS / "labels.txt").read_text().split()
    expected = 0
    for line in (GOEMOTIONS / "dev.tsv").read_text(encoding="utf-8").splitlines():
        labels = {names[int(i)] for i in line.split("\t")[1].split(",")} - {"surprise"}
        expected += len({"joy" if x == "joy" else x for x in labels}) == 1
    recs = prepared("goemotions", real, tmp_path / "real-out", expected)
    assert {r["split"] for r in recs} == {"dev"}


def test_fer2013_small_copy(tmp_path):
    src = tmp_path / "fer"
    for split in ("train", "val"):
        for cls in ("angry", "happy", "surprise"):
            (src / split / cls).mkdir(parents=True)
            for p in sorted((FER / split / cls).glob("*.jpg"))[:3]:
                shutil.copy(p, src / split / cls)
    recs = prepared("fer2013", src, tmp_path / "out", 12)  # surprise dropped
    assert Counter((r["split"], r["emotion"]) for r in recs) == {("train", "anger"): 3, ("train", "happy"): 3,
                                                                  ("val", "anger"): 3, ("val", "happy"): 3}
    assert all(r["image"] and r["speaker"] is None for r in recs)


def test_link_mode_and_atomic_metadata(tmp_path):
    out = prepare("cremad", CREMAD, tmp_path / "linked", link=True)
    media = [p for p in (tmp_path / "linked" / "media").iterdir()]
    assert media and all(p.is_symlink() for p in media)
    assert not list((tmp_path / "linked").glob(".metadata.jsonl.*"))  # no temp file left
    assert json.loads((tmp_path / "linked" / "metadata.jsonl").read_text().splitlines()[0])["corpus"] == "cremad"
    assert len(out) == 12


@pytest.mark.parametrize("corpus", ["cremad", "emodb", "goemotions", "fer2013"])
def test_wrong_folder_is_a_clear_error(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="error: "):
        prepare(corpus, tmp_path / "empty", tmp_path / "out")
