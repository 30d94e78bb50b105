"""The clip-folder format read back (records, a Hugging Face dataset) and training.data's speaker-disjoint splits.
Tests that read ../shared/data skip, with the reason, where it is absent (a plain clone)."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import CREMAD, EMODB, SHARED

from training.clip_folder import FIELDS, clip_record, load_clip_folder_dataset, read_clip_folder
from training.data import DEFAULT_SPLITS, default_split, speaker_split
from training.prepare import prepare
from training.readers.cremad import read_cremad
from training.readers.emodb import read_emodb
from training.readers.ravdess import read_ravdess

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"needs the shared corpora in {SHARED}")


def write_folder(root: Path, records: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.jsonl").write_text("".join(json.dumps(clip_record(**r)) + "\n" for r in records))
    return root


@needs_shared
def test_read_clip_folder_makes_media_absolute(tmp_path):
    folder = tmp_path / "clips"
    (folder / "media").mkdir(parents=True)
    shutil.copy(CREMAD / "1002_DFA_SAD_XX.mp3", folder / "media" / "a.mp3")
    write_folder(folder, [{"id": "x/a", "audio": "media/a.mp3", "emotion": "sad", "corpus": "x"},
                          {"id": "x/b", "text": "hello", "emotion": "happy", "corpus": "x"}])
    moved = shutil.move(folder, tmp_path / "moved")  # paths are relative: the folder can move
    recs = read_clip_folder(moved)
    assert [r["id"] for r in recs] == ["x/a", "x/b"] and list(recs[0]) == list(FIELDS)
    assert Path(recs[0]["audio"]).is_absolute() and Path(recs[0]["audio"]).is_file()
    assert recs[1]["audio"] is None and recs[1]["text"] == "hello"


def test_read_clip_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.jsonl is missing"):
        read_clip_folder(tmp_path)
    (tmp_path / "metadata.jsonl").write_text('{"id": "a"}\n{not json\n')
    with pytest.raises(ValueError, match=r"metadata.jsonl:2: not a JSON line"):
        read_clip_folder(tmp_path)


@needs_shared
def test_load_clip_folder_dataset(tmp_path):
    out = tmp_path / "cremad"
    prepare("cremad", CREMAD, out, link=True)
    ds = load_clip_folder_dataset(out, cache_dir=tmp_path / "hf")
    assert len(ds) == 12 and set(ds.column_names) == set(FIELDS)
    rows = list(ds)
    assert all(Path(r["audio"]).is_absolute() and Path(r["audio"]).exists() for r in rows)  # path strings
    assert rows == [{k: r[k] for k in ds.column_names} for r in read_clip_folder(out)]
    assert Counter(ds["emotion"]) == {e: 2 for e in ("anger", "disgust", "fear", "happy", "neutral", "sad")}
    assert ds[0]["extra"]["sex"] == "Male" and ds[0]["extra"]["age"] == 51
    relative = load_clip_folder_dataset(out, absolute_paths=False, cache_dir=tmp_path / "hf")
    assert relative[0]["video"] == "media/cremad/1001_DFA_ANG_XX.flv"
    with pytest.raises(FileNotFoundError):
        load_clip_folder_dataset(tmp_path / "nothing")


def test_readers_do_not_import_torch():
    import subprocess

    code = ("import sys, training.data, training.clip_folder, training.readers, training.prepare, training.eval_sets; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.stdout.strip() == "False"


@needs_shared
def test_default_splits_emodb_speaker_disjoint():
    recs = list(read_emodb(EMODB))  # the records prepare writes, without writing them
    sp = DEFAULT_SPLITS["emodb"]
    parts = speaker_split(recs, sp["val"], sp["test"])
    speakers = {k: {r["speaker"] for r in v} for k, v in parts.items()}
    assert speakers == {"train": {"11", "12", "13", "14"}, "val": {"09", "10"}, "test": {"03", "08"}}
    assert sum(len(v) for v in parts.values()) == len(recs) == 350
    assert sorted(r["id"] for v in parts.values() for r in v) == sorted(r["id"] for r in recs)
    sex = {r["speaker"]: r["extra"]["sex"] for r in recs}
    assert sorted(sex[s] for s in sp["val"]) == ["female", "male"] == sorted(sex[s] for s in sp["test"])
    assert all(Counter(r["emotion"] for r in v).keys() == {"anger", "disgust", "fear", "happy", "neutral", "sad"}
               for v in parts.values())  # each part sees every emotion


@needs_shared
def test_default_splits_cremad():
    sp = DEFAULT_SPLITS["cremad"]
    parts = speaker_split(list(read_cremad(CREMAD)), sp["val"], sp["test"])
    assert {r["speaker"] for r in parts["train"]} == {"1001"} and {r["speaker"] for r in parts["val"]} == {"1002"}
    assert parts["test"] == [] and len(parts["train"]) == len(parts["val"]) == 6


def test_speaker_beats_source_split_and_stays_disjoint():
    recs = [clip_record(id=f"c/{i}", speaker=str(i % 5), split=("train", "test")[i % 2], corpus="c")
            for i in range(40)]
    parts = speaker_split(recs, ["1"], ["2"])
    assert {r["speaker"] for r in parts["val"]} == {"1"} and {r["speaker"] for r in parts["test"]} == {"2"}
    assert {r["speaker"] for r in parts["train"]} == {"0", "3", "4"}
    everything = speaker_split(recs, [])  # no held-out speakers: all train, never a speaker split in two
    assert len(everything["train"]) == 40 and not everything["val"] and not everything["test"]
    assert speaker_split([clip_record(id="n/1", speaker="1001")], [1001])["val"]  # ids compare as strings
    with pytest.raises(ValueError, match="both validation and test"):
        speaker_split(recs, ["1", "2"], ["2"])


def test_records_without_speaker_keep_their_split_or_hash():
    recs = [clip_record(id="g/a", split="train"), clip_record(id="g/b", split="dev"),
            clip_record(id="g/c", split="val"), clip_record(id="g/d", split="test")]
    parts = speaker_split(recs, [])
    assert {k: [r["id"] for r in v] for k, v in parts.items()} == {"train": ["g/a"], "val": ["g/b", "g/c"],
                                                                   "test": ["g/d"]}
    loose = [clip_record(id=f"feedback/{i:04d}") for i in range(2000)]
    parts = speaker_split(loose, [], val_fraction=0.2)
    assert 0.17 < len(parts["val"]) / 2000 < 0.23 and not parts["test"]
    again = speaker_split(list(reversed(loose)), [], val_fraction=0.2)  # by id, not by order or run
    assert {r["id"] for r in again["val"]} == {r["id"] for r in parts["val"]}
    with pytest.raises(ValueError, match="split 'holdout'"):
        speaker_split([clip_record(id="g/e", split="holdout")], [])


@needs_shared
def test_default_splits_ravdess_speaker_disjoint():
    recs = list(read_ravdess(SHARED / "ravdess-speech"))
    parts = default_split(recs, "ravdess")
    speakers = {k: {r["speaker"] for r in v} for k, v in parts.items()}
    assert speakers["val"] == {"05", "06"} and speakers["test"] == set() and not speakers["train"] & {"05", "06"}
    assert len(speakers["train"]) == 16 and len(parts["val"]) == 2 * 44 and len(parts["train"]) == 16 * 44
    assert sorted(r["extra"]["sex"] for r in parts["val"][::44]) == ["female", "male"]
    with pytest.raises(ValueError, match="no default speaker split"):
        default_split(recs, "goemotions")
