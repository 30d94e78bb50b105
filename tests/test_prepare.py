"""training.prepare on the real corpora in ../shared/data (small copies where a corpus is big): counts computed
independently from the source files, labels, splits, speakers, extras, media, README, errors, atomic metadata.
Tests that read ../shared/data skip, with the reason, where it is absent (a plain clone)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import CREMAD, EMODB, FER, GOEMOTIONS, SHARED

from training.clip_folder import FIELDS, load_clip_folder_dataset, read_clip_folder
from training.prepare import main, prepare

RAVDESS = SHARED / "ravdess-speech"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"needs the shared corpora in {SHARED}")

SIX = {"anger", "disgust", "fear", "happy", "neutral", "sad"}
# Written out here rather than taken from stresslab.labels, so that the expected counts are independent.
EMODB_LETTERS = {"W": "anger", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"}
CREMAD_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
RAVDESS_CODES = {"01": "neutral", "03": "happy", "04": "sad", "05": "anger", "06": "fear", "07": "disgust"}
FER_CLASSES = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
               "sad": "sad"}


def check_folder(out: Path, n: int, tmp_path: Path) -> list[dict]:
    """The folder holds n well-formed records whose media exist, and loads as a Hugging Face dataset."""
    lines = (out / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == n
    for line in lines:  # as written: every key, media relative to the folder
        raw = json.loads(line)
        assert list(raw) == list(FIELDS)
        assert all(raw[k] is None or not Path(raw[k]).is_absolute() for k in ("video", "audio", "image"))
    recs = read_clip_folder(out)
    assert len({r["id"] for r in recs}) == n
    for r in recs:
        assert r["emotion"] in SIX or (r["emotion"] is None and r["stress"] is not None)
        assert isinstance(r["extra"], dict) and r["corpus"] == r["id"].split("/")[0]
        for key in ("video", "audio", "image"):
            assert r[key] is None or Path(r[key]).is_file(), (r["id"], key)
    ds = load_clip_folder_dataset(out, cache_dir=tmp_path / "hf-cache")
    assert len(ds) == n and set(ds.column_names) == set(FIELDS)
    assert "Licence" in (out / "README.md").read_text()
    return recs


@needs_shared
def test_emodb(tmp_path):
    names = [p.stem for p in (EMODB / "wav").glob("*.wav")]
    assert len(names) == 408
    expected = Counter(EMODB_LETTERS[n[5]] for n in names if n[5] != "L")
    out = tmp_path / "emodb"
    prepare("emodb", EMODB, out, link=True)
    recs = check_folder(out, sum(expected.values()), tmp_path)
    assert len(recs) == 408 - sum(n[5] == "L" for n in names) == 350
    assert Counter(r["emotion"] for r in recs) == expected
    assert Counter(r["speaker"] for r in recs) == Counter(n[:2] for n in names if n[5] != "L")
    assert {r["speaker"] for r in recs} == {"03", "08", "09", "10", "11", "12", "13", "14"}
    assert all(r["split"] is None and r["text"] is None and r["video"] is None and r["image"] is None for r in recs)
    r = next(r for r in recs if r["id"] == "emodb/03a01Wa")
    assert r["emotion"] == "anger" and r["extra"]["sentence"] == "a01" and r["extra"]["version"] == "a"
    assert r["extra"]["recognition_pct"] == 95.0 and r["extra"]["naturalness_pct"] == 90.0  # erkennung.txt
    sexes = {r["speaker"]: r["extra"]["sex"] for r in recs}
    assert {s for s, x in sexes.items() if x == "male"} == {"03", "10", "11", "12"}
    assert {s for s, x in sexes.items() if x == "female"} == {"08", "09", "13", "14"}
    media = Path(r["audio"])
    assert media.is_symlink() and media.resolve() == (EMODB / "wav" / "03a01Wa.wav").resolve()
    readme = (out / "README.md").read_text()
    assert "Burkhardt" in readme and "boredom" in readme and "| all | 100 | 30 |" in readme



@needs_shared
def test_ravdess_counts_from_the_file_names(tmp_path):
    """Every count worked out here from the file names (modality-channel-emotion-intensity-statement-repetition-
    actor), not through the reader: calm (02) and surprised (08) dropped, speaker = actor."""
    names = [p.stem for p in RAVDESS.glob("Actor_*/*.flac")]
    assert len(names) == 1080 and len({n.split("-")[6] for n in names}) == 18
    kept = [n for n in names if n.split("-")[2] not in ("02", "08")]
    assert len(kept) == 1080 - 18 * (8 + 8) == 792  # 8 calm + 8 surprised clips per actor
    expected = Counter(RAVDESS_CODES[n.split("-")[2]] for n in kept)
    assert expected == {"neutral": 4 * 18, **{e: 8 * 18 for e in SIX - {"neutral"}}}
    out = tmp_path / "ravdess"
    prepare("ravdess", RAVDESS, out, link=True)
    recs = check_folder(out, len(kept), tmp_path)
    assert sorted(r["id"] for r in recs) == sorted(f"ravdess/{n}" for n in kept)
    assert Counter(r["emotion"] for r in recs) == expected
    assert Counter(r["speaker"] for r in recs) == Counter(n.split("-")[6] for n in kept)
    assert all(r["split"] is None and r["video"] is None and r["image"] is None for r in recs)
    r = next(r for r in recs if r["id"] == "ravdess/03-01-05-02-01-01-07")
    assert r["emotion"] == "anger" and r["speaker"] == "07" and r["text"] == "Kids are talking by the door."
    assert (r["extra"]["intensity"], r["extra"]["statement"], r["extra"]["repetition"]) == ("strong", "01", "01")
    assert r["extra"]["sex"] == "male"  # odd actors are male
    intensity = Counter({"01": "normal", "02": "strong"}[n.split("-")[3]] for n in kept)
    assert Counter(x["extra"]["intensity"] for x in recs) == intensity and intensity["strong"] == 18 * 5 * 4
    media = Path(r["audio"])
    assert media.is_symlink() and media.resolve() == (RAVDESS / "Actor_07" / "03-01-05-02-01-01-07.flac").resolve()
    readme = (out / "README.md").read_text()
    assert "Livingstone" in readme and "CC BY-NC-SA 4.0" in readme and "calm" in readme


@needs_shared
def test_cremad_copies_media_and_reads_meta(tmp_path):
    out = tmp_path / "cremad"
    prepare("cremad", CREMAD, out)
    recs = check_folder(out, 12, tmp_path)
    stems = sorted(p.stem for p in CREMAD.iterdir() if p.suffix in (".flv", ".mp3"))
    assert sorted(r["id"].split("/")[1] for r in recs) == stems
    assert Counter(r["emotion"] for r in recs) == Counter(CREMAD_CODES[s.split("_")[2]] for s in stems)
    videos = [r for r in recs if r["video"]]
    assert {r["speaker"] for r in videos} == {"1001"} and len(videos) == 6
    assert all(r["audio"] == r["video"] and r["video"].endswith(".flv") for r in videos)  # audio from the container
    audios = [r for r in recs if not r["video"]]
    assert {r["speaker"] for r in audios} == {"1002"} and all(r["audio"].endswith(".mp3") for r in audios)
    assert all(r["text"] == "Don't forget a jacket." and r["split"] is None for r in recs)
    for r in recs:  # copies, byte for byte
        media = Path(r["audio"])
        assert not media.is_symlink() and media.read_bytes() == (CREMAD / f"{r['id'][7:]}{media.suffix}").read_bytes()
    with (CREMAD / "meta" / "summaryTable.csv").open(newline="") as f:
        table = {row["FileName"]: row for row in csv.DictReader(f)}
    r = next(r for r in recs if r["id"] == "cremad/1001_DFA_FEA_XX")
    assert r["extra"]["sex"] == "Male" and r["extra"]["age"] == 51 and r["extra"]["race"] == "Caucasian"
    assert r["extra"]["ethnicity"] == "Not Hispanic" and r["extra"]["sentence"] == "DFA"
    assert r["extra"]["intensity"] == "XX"
    row = table["1001_DFA_FEA_XX"]
    assert (r["extra"]["voice_vote"], r["extra"]["face_vote"], r["extra"]["multimodal_vote"]) == (
        row["VoiceVote"], row["FaceVote"], row["MultiModalVote"])
    assert r["extra"]["face_level"] == float(row["FaceLevel"])
    assert next(r for r in recs if r["speaker"] == "1002")["extra"]["sex"] == "Female"
    assert "Open Database License" in (out / "README.md").read_text()


@needs_shared
def test_cremad_release_layout_without_meta(tmp_path):
    """The full release keeps one clip in several forms (VideoFlash/, AudioMP3/, ...): one record each, no meta."""
    src = tmp_path / "src"
    (src / "VideoFlash").mkdir(parents=True)
    (src / "AudioMP3").mkdir()
    for p in sorted(CREMAD.glob("1001_*.flv"))[:2]:
        shutil.copy(p, src / "VideoFlash")
    # the same clip as audio only: real MP3 bytes of the same sentence and emotion (another actor's, renamed)
    shutil.copy(CREMAD / "1002_DFA_ANG_XX.mp3", src / "AudioMP3" / "1001_DFA_ANG_XX.mp3")
    shutil.copy(CREMAD / "1002_DFA_SAD_XX.mp3", src / "AudioMP3")
    (src / "notes_about_this.txt").write_text("not a clip")
    prepare("cremad", src, tmp_path / "out")
    recs = check_folder(tmp_path / "out", 3, tmp_path)
    by_id = {r["id"]: r for r in recs}
    assert set(by_id) == {"cremad/1001_DFA_ANG_XX", "cremad/1001_DFA_DIS_XX", "cremad/1002_DFA_SAD_XX"}
    merged = by_id["cremad/1001_DFA_ANG_XX"]
    assert merged["video"].endswith(".flv") and merged["audio"].endswith(".mp3")  # separate audio preferred
    assert by_id["cremad/1001_DFA_DIS_XX"]["audio"] == by_id["cremad/1001_DFA_DIS_XX"]["video"]
    assert all(set(r["extra"]) == {"sentence", "intensity"} for r in recs)  # no meta/: no extras from it


@needs_shared
def test_cremad_split_folders(tmp_path):
    for split, p in (("train", CREMAD / "1001_DFA_HAP_XX.flv"), ("test", CREMAD / "1002_DFA_HAP_XX.mp3")):
        (tmp_path / "src" / split).mkdir(parents=True)
        shutil.copy(p, tmp_path / "src" / split)
    recs = prepare("cremad", tmp_path / "src", tmp_path / "out")
    assert {r["speaker"]: r["split"] for r in recs} == {"1001": "train", "1002": "test"}


def go_src(tmp_path: Path, **files: str) -> Path:
    src = tmp_path / "go-src"
    src.mkdir()
    shutil.copy(GOEMOTIONS / "labels.txt", src)
    for name, text in files.items():
        (src / f"{name}.tsv").write_text(text, encoding="utf-8")
    return src


@needs_shared
def test_goemotions_rules(tmp_path):
    # labels.txt: 0 anger, 1 disgust, 2 fear, 3 joy, 4 neutral, 5 sadness, 6 surprise
    src = go_src(tmp_path, train="I love it\t3\ta1\nwow\t6\ta2\nyay wow\t3,6\ta3\nmixed\t0,3\ta4\nmeh\t4\ta5\n"
                                  'he said "no"\t0,0\ta6\n',
                 dev="so sad\t5\tb1\n", test="ugh\t1\tc1\n")
    prepare("goemotions", src, tmp_path / "out")
    recs = check_folder(tmp_path / "out", 6, tmp_path)
    assert [(r["id"], r["text"], r["emotion"], r["split"]) for r in recs] == [
        ("goemotions/train/a1", "I love it", "happy", "train"), ("goemotions/train/a3", "yay wow", "happy", "train"),
        ("goemotions/train/a5", "meh", "neutral", "train"), ("goemotions/train/a6", 'he said "no"', "anger", "train"),
        ("goemotions/dev/b1", "so sad", "sad", "dev"), ("goemotions/test/c1", "ugh", "disgust", "test")]
    assert recs[1]["extra"] == {"comment_id": "a3", "labels": ["joy", "surprise"]}
    assert all(r["audio"] is None and r["video"] is None and r["speaker"] is None for r in recs)


@needs_shared
def test_goemotions_real_dev_counts(tmp_path):
    src = go_src(tmp_path)
    shutil.copy(GOEMOTIONS / "dev.tsv", src)
    names = (GOEMOTIONS / "labels.txt").read_text().split()
    to_six = {"anger": "anger", "disgust": "disgust", "fear": "fear", "joy": "happy", "neutral": "neutral",
              "sadness": "sad"}
    expected = Counter()
    lines = (GOEMOTIONS / "dev.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines:
        mapped = {to_six.get(names[int(i)]) for i in line.split("\t")[1].split(",")} - {None}
        if len(mapped) == 1:
            expected[mapped.pop()] += 1
    assert len(lines) == 5426
    out = tmp_path / "out"
    recs = prepare("goemotions", src, out)
    assert Counter(r["emotion"] for r in recs) == expected
    assert len(recs) == sum(expected.values()) == 4647
    assert {r["split"] for r in recs} == {"dev"}
    assert len(load_clip_folder_dataset(out, cache_dir=tmp_path / "hf")) == 4647


@needs_shared
def test_goemotions_malformed_row_is_a_clear_error(tmp_path):
    src = go_src(tmp_path, train="fine\t3\ta1\nno label ids here\n")
    with pytest.raises(ValueError, match=r"train\.tsv:2: expected text TAB comma-separated label ids"):
        prepare("goemotions", src, tmp_path / "out")
    src2 = tmp_path / "x"
    shutil.copytree(src, src2)
    (src2 / "train.tsv").write_text("out of range\t9\ta1\n")
    with pytest.raises(ValueError, match="0-6"):
        prepare("goemotions", src2, tmp_path / "out")


@needs_shared
def test_fer2013_small_copy(tmp_path):
    src = tmp_path / "fer"
    for split in ("train", "val"):
        for cls in sorted(p.name for p in (FER / split).iterdir()):
            (src / split / cls).mkdir(parents=True)
            for p in sorted((FER / split / cls).glob("*.jpg"))[:2]:
                shutil.copy(p, src / split / cls)
    assert {p.name for p in (src / "train").iterdir()} == {*FER_CLASSES, "surprise"}
    out = tmp_path / "out"
    prepare("fer2013", src, out)
    recs = check_folder(out, 2 * 2 * 6, tmp_path)  # surprise dropped
    assert Counter((r["split"], r["emotion"]) for r in recs) == {(s, e): 2 for s in ("train", "val")
                                                                 for e in FER_CLASSES.values()}
    assert all(r["image"].endswith(".jpg") and r["speaker"] is None and r["video"] is None for r in recs)
    r = recs[0]
    assert Path(r["image"]).read_bytes() == (src / r["split"] / r["extra"]["class"] / Path(r["image"]).name
                                             ).read_bytes()


@needs_shared
def test_fer2013_without_split_folders_and_unknown_class(tmp_path):
    src = tmp_path / "fer"
    (src / "happy").mkdir(parents=True)
    for p in sorted((FER / "val" / "happy").glob("*.jpg"))[:3]:
        shutil.copy(p, src / "happy")
    recs = prepare("fer2013", src, tmp_path / "out")
    assert len(recs) == 3 and {(r["split"], r["emotion"]) for r in recs} == {(None, "happy")}
    (src / "contempt").mkdir()
    with pytest.raises(ValueError, match="unknown FER2013 class folder; expected angry"):
        prepare("fer2013", src, tmp_path / "out2")


def feedback_store(root: Path):
    from stresslab.corrections.store import FeedbackStore

    store = FeedbackStore(root)
    video = store.add(emotion="fear", stress_rating=4, transcript="Don't forget a jacket.",
                      media_path=CREMAD / "1001_DFA_FEA_XX.flv", consent_keep_media=True, consent_share=True,
                      model_output={"emotion": "anger", "probabilities": {"anger": 0.6, "fear": 0.4}})
    audio = store.add(emotion="sad", media_path=CREMAD / "1002_DFA_SAD_XX.mp3", consent_keep_media=True)
    image = store.add(emotion="happy", media_path=sorted((FER / "val" / "happy").glob("*.jpg"))[0],
                      consent_keep_media=True, note="a face")
    rating = store.add(emotion=None, stress_rating=2, transcript="fine, thanks")
    no_media = store.add(emotion="anger", media_path=CREMAD / "1002_DFA_ANG_XX.mp3")  # no consent: not kept
    store.add(emotion=None, note="neither emotion nor rating")  # skipped
    return {"video": video, "audio": audio, "image": image, "rating": rating, "no_media": no_media}


@needs_shared
def test_feedback_store(tmp_path):
    saved = feedback_store(tmp_path / "store")
    before = sorted(p.relative_to(tmp_path / "store") for p in (tmp_path / "store").rglob("*"))
    out = tmp_path / "fb"
    prepare("feedback", tmp_path / "store", out)
    recs = {r["id"]: r for r in check_folder(out, 5, tmp_path)}
    assert sorted(p.relative_to(tmp_path / "store") for p in (tmp_path / "store").rglob("*")) == before
    r = recs[f"feedback/{saved['video'].id}"]
    assert r["video"] == r["audio"] and r["video"].endswith(".flv") and r["image"] is None
    assert r["emotion"] == "fear" and r["stress"] == 4.0 and isinstance(r["stress"], float)
    assert r["text"] == "Don't forget a jacket." and r["speaker"] is None and r["split"] is None
    assert r["corpus"] == "feedback" and r["extra"]["consent_share"] is True
    assert json.loads(r["extra"]["model_output"])["emotion"] == "anger"
    r = recs[f"feedback/{saved['audio'].id}"]
    assert r["audio"].endswith(".mp3") and r["video"] is None and r["stress"] is None
    r = recs[f"feedback/{saved['image'].id}"]
    assert r["image"].endswith(".jpg") and r["audio"] is None and r["extra"]["note"] == "a face"
    r = recs[f"feedback/{saved['rating'].id}"]
    assert r["emotion"] is None and r["stress"] == 2.0 and r["text"] == "fine, thanks"
    r = recs[f"feedback/{saved['no_media'].id}"]
    assert (r["video"], r["audio"], r["image"], r["emotion"]) == (None, None, None, "anger")
    readme = (out / "README.md").read_text()
    assert "| (none) | 1 | 0 | 1 | 1 | 0 | 1 | 1 | 5 |" in readme  # no split; the rating-only record: no emotion
    assert "2 with a stress rating" in readme


@needs_shared
def test_feedback_from_hub_id(tmp_path, monkeypatch):
    """A Hub dataset id goes through FeedbackStore.from_hub into a snapshot inside OUT (so --link stays valid)."""
    from stresslab.corrections.store import FeedbackStore

    feedback_store(tmp_path / "remote")
    calls = []

    def fake_from_hub(cls, repo_id, local_dir, token=None):
        calls.append((repo_id, Path(local_dir)))
        shutil.copytree(tmp_path / "remote", local_dir)
        return cls(local_dir)

    monkeypatch.setattr(FeedbackStore, "from_hub", classmethod(fake_from_hub))
    out = tmp_path / "fb"
    recs = prepare("feedback", "lab/stresslab-corrections", out, link=True)
    assert calls == [("lab/stresslab-corrections", out / ".hub-snapshot")]
    assert len(recs) == 5 and all(Path(out / r["audio"]).resolve().is_relative_to((out / ".hub-snapshot").resolve())
                                  for r in recs if r["audio"])


@pytest.mark.parametrize("corpus", ["cremad", "emodb", "ravdess", "goemotions", "fer2013", "feedback"])
def test_wrong_source_is_a_clear_error(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected"):
        prepare(corpus, tmp_path / "empty", tmp_path / "out")
    assert list((tmp_path / "empty").iterdir()) == []  # nothing created in the source
    with pytest.raises(ValueError, match="not a folder"):
        prepare(corpus, tmp_path / "missing" / "x", tmp_path / "out")
    assert not (tmp_path / "out" / "metadata.jsonl").exists()


@needs_shared
def test_another_corpus_is_not_mistaken(tmp_path):
    with pytest.raises(ValueError, match="does not look like CREMA-D"):
        prepare("cremad", EMODB, tmp_path / "out")
    with pytest.raises(ValueError, match="does not look like EmoDB"):
        prepare("emodb", CREMAD, tmp_path / "out")
    with pytest.raises(ValueError, match="does not look like RAVDESS"):
        prepare("ravdess", EMODB, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown corpus"):
        prepare("iemocap", CREMAD, tmp_path / "out")


@needs_shared
def test_metadata_write_is_atomic(tmp_path, monkeypatch):
    """A failure while writing metadata.jsonl leaves the previous file whole and no temp file behind."""
    out = tmp_path / "out"
    prepare("cremad", CREMAD, out, link=True)
    before = (out / "metadata.jsonl").read_bytes()

    def failing_fsync(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CREMAD / "1002_DFA_ANG_XX.mp3", src)
    with pytest.raises(OSError, match="disk gone"):
        prepare("cremad", src, out, link=True)
    assert (out / "metadata.jsonl").read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    assert len(prepare("cremad", src, out)) == 1  # a re-run replaces it; copies replace the old symlinks
    assert not Path(out / "media" / "cremad" / "1002_DFA_ANG_XX.mp3").is_symlink()


@needs_shared
def test_cli(tmp_path, capsys):
    assert main(["cremad", str(CREMAD), str(tmp_path / "out"), "--link"]) == 0
    assert "wrote 12 clips" in capsys.readouterr().err
    assert len(read_clip_folder(tmp_path / "out")) == 12
    with pytest.raises(SystemExit) as e:
        main(["emodb", str(CREMAD), str(tmp_path / "bad")])
    assert e.value.code == 2 and "error:" in capsys.readouterr().err
