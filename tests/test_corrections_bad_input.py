"""The correction store under attack (issue 10): malformed and hostile record files, links planted in media/, a full
disk, kept "media" that is a link, a pipe or not media, receipts in another letter case, and the record builder's
promise to store no server path or upload name. The store, its CLI and HubSync (against tests/fake_hub.py) run
unchanged."""

import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import CREMAD
from fake_hub import FakeHub
from test_feedback import TOKEN, cli, load_records, one_error_line

from stresslab.corrections import hub_sync
from stresslab.corrections import store as store_module
from stresslab.corrections.hub_sync import HubSync
from stresslab.corrections.record import CorrectionRecord, correction_record
from stresslab.corrections.store import FeedbackStore

CLIP = CREMAD / "1002_DFA_ANG_XX.mp3"
FLV = CREMAD / "1001_DFA_ANG_XX.flv"


@pytest.fixture
def hub():
    hub = FakeHub()
    yield hub
    hub.close()
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    hub_sync._request_timeout = None  # the timeout HubSync installs must not leak into other tests
    set_client_factory(_http.default_client_factory)


def plant_bad_records(root: Path) -> dict[str, str]:
    """Nine kinds of bad file in records/: {file stem: what it is}."""
    records = root / "records"
    line = json.loads(CorrectionRecord(emotion="sad").to_json_line())
    bad = {}

    def plant(kind: str, content: bytes | None = None, stem: str | None = None, **fields) -> None:
        rid = stem or CorrectionRecord(emotion=None).id
        if content is None:
            content = json.dumps({**line, "id": rid, **fields}).encode()
        (records / f"{rid}.jsonl").write_bytes(content)
        bad[rid] = kind

    plant("null", b"null")
    plant("a list", b"[1, 2, 3]")
    plant("truncated", json.dumps(line).encode()[:40])
    plant("not UTF-8", b'{"emotion": "\xff\xfe sad"}')
    plant("unknown emotion", emotion="joy")
    plant("media outside the store", media="../../etc/passwd", consent_keep_media=True, media_kind="audio")
    plant("another record's id", id="0" * 32)
    plant("absurdly nested", model_output="[" * 100_000 + "]" * 100_000)
    (records / "x.jsonl").mkdir()
    (records / "x.jsonl" / "inside").write_text("a folder named like a record")
    bad["x"] = "a folder"
    return bad


def test_bad_record_files_are_quarantined_and_every_good_record_still_works(tmp_path, hub):
    root = tmp_path / "store"
    store = FeedbackStore(root)
    good = [store.add(emotion="fear", media_path=CLIP, consent_keep_media=True, consent_share=True),
            store.add(emotion=None, stress_rating=3, consent_share=True)]
    bad = plant_bad_records(root)

    p = cli("list", "--store", root)  # the CLI reads first: it moves them and names them on one line
    assert p.returncode == 0 and [line.split()[0] for line in p.stdout.splitlines()] == [r.id for r in good]
    warning = p.stderr.strip()
    assert len(p.stderr.strip().splitlines()) == 1 and warning.startswith("warning: 9 bad record file(s)")
    assert all(stem in warning for stem in bad) and "Traceback" not in p.stderr
    quarantined = {name.removesuffix(".jsonl") for name in store.quarantined()}
    assert quarantined == set(bad)  # moved, not deleted: a person can look at them
    assert (root / "quarantine" / "x.jsonl" / "inside").read_text() == "a folder named like a record"
    assert sorted(q.name for q in (root / "records").iterdir()) == sorted(f"{r.id}.jsonl" for r in good)

    assert cli("export", "--store", root, tmp_path / "out").returncode == 0
    assert sorted(load_records(tmp_path / "out")["id"]) == sorted(r.id for r in good)
    assert len(store.to_dataset()) == 2 and store.records() == good
    env = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
    p = cli("push", "--store", root, "--repo", "lab/c", env=env)
    assert p.returncode == 0 and "pushed 2 record(s)" in p.stdout, p.stderr
    assert sorted(hub.repos["lab/c"]) == sorted(["README.md", f"media/{good[0].id}/clip.mp3"]
                                                + [f"records/{r.id}.jsonl" for r in good])


def test_the_library_reports_each_bad_file_once_by_id(tmp_path, caplog):
    store = FeedbackStore(tmp_path)
    kept = store.add(emotion="happy")
    bad = plant_bad_records(tmp_path)
    caplog.set_level(logging.WARNING, logger=store_module.__name__)
    assert store.records() == [kept]
    assert {p.id for p in store.problems} == set(bad) and all(p.moved_to.exists() for p in store.problems)
    assert len(caplog.records) == 1 and all(stem in caplog.records[0].getMessage() for stem in bad)
    assert store.records() == [kept] and len(caplog.records) == 1  # moved aside: not reported again
    reasons = {p.id: p.reason for p in store.problems}
    assert "emotion 'joy'" in reasons[next(k for k, v in bad.items() if v == "unknown emotion")]
    assert "media '../../etc/passwd'" in reasons[next(k for k, v in bad.items() if v == "media outside the store")]


def test_links_planted_in_media_are_not_followed(tmp_path, hub):
    store = FeedbackStore(tmp_path / "s")
    linked = store.add(emotion="sad", media_path=CLIP, consent_keep_media=True)
    folder_link = store.add(emotion="fear", media_path=CLIP, consent_keep_media=True)
    media = store.root / "media"
    (media / linked.id / "clip.mp3").unlink()
    (media / linked.id / "clip.mp3").symlink_to("/etc/passwd")
    shutil.rmtree(media / folder_link.id)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "clip.mp3").write_bytes(CLIP.read_bytes())
    (media / folder_link.id).symlink_to(tmp_path / "elsewhere")
    assert store.media_path(linked) is None and store.media_path(folder_link) is None
    out = store.export(tmp_path / "out")
    assert not (out / "media").exists() and len(load_records(out)) == 2
    HubSync(store, "lab/c", TOKEN, endpoint=hub.url, timeout=5.0).push_once()
    assert not [f for f in hub.repos["lab/c"] if f.startswith("media/")]


@pytest.mark.parametrize("failing", ["record", "media"])
def test_a_full_disk_leaves_neither_media_nor_an_empty_folder(tmp_path, monkeypatch, failing):
    store = FeedbackStore(tmp_path)
    real = store_module.write_atomic

    def full_disk(dest, *args, **kwargs):
        if (dest.suffix == ".jsonl") == (failing == "record"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(dest, *args, **kwargs)

    monkeypatch.setattr(store_module, "write_atomic", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.add(emotion="sad", media_path=CLIP, consent_keep_media=True)
    assert list((tmp_path / "media").iterdir()) == [] and list((tmp_path / "records").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    monkeypatch.setattr(store_module, "write_atomic", real)
    assert store.add(emotion="sad", media_path=CLIP, consent_keep_media=True).media == "clip.mp3"


def test_open_cleans_up_after_crashes_and_reports_bad_records(tmp_path):
    FeedbackStore(tmp_path).add(emotion="neutral")
    old = time.time() - 7200
    orphan, temp = tmp_path / "media" / ("a" * 32), tmp_path / "tmp" / "clip.mp3.x1y2.mp3"
    orphan.mkdir()
    (orphan / "clip.mp3").write_bytes(b"half a clip")
    temp.write_bytes(b"half a record")
    for p in (orphan / "clip.mp3", orphan, temp):
        os.utime(p, (old, old))
    in_progress = tmp_path / "media" / ("b" * 32)  # a write happening now, in another process
    in_progress.mkdir()
    (tmp_path / "records" / f"{'c' * 32}.jsonl").write_text("null")
    store = FeedbackStore.open(tmp_path)
    assert not orphan.exists() and not temp.exists() and in_progress.exists()
    assert [p.id for p in store.problems] == ["c" * 32] and store.quarantined() == [f"{'c' * 32}.jsonl"]


def test_keep_media_copies_only_regular_files_that_are_media(tmp_path):
    store = FeedbackStore(tmp_path / "s")
    upload = tmp_path / "uploads"
    upload.mkdir()
    (upload / "voice.mp3").symlink_to(CLIP)  # a link, even to real media
    (upload / "shadow.wav").symlink_to("/etc/shadow" if Path("/etc/shadow").exists() else "/etc/passwd")
    shutil.copy("/etc/passwd", upload / "passwd.wav")  # readable, regular, not media
    (upload / "noise.png").write_bytes(os.urandom(3000))
    os.mkfifo(upload / "pipe.mp3")  # opening it for reading would block
    (upload / "notes").write_bytes(CLIP.read_bytes())  # media, but nothing says which kind
    expected = {"voice.mp3": "symbolic link", "shadow.wav": "symbolic link", "passwd.wav": "not kept",
                "noise.png": "not kept", "pipe.mp3": "not a regular file", "notes": "only a video, audio or image"}
    for name, reason in expected.items():
        with pytest.raises(ValueError, match=reason) as e:
            store.add(emotion="sad", media_path=upload / name, consent_keep_media=True)
        assert str(upload) not in str(e.value) and name in str(e.value)
    assert store.records() == [] and list((store.root / "media").iterdir()) == []
    err = one_error_line(cli("add", "--store", store.root, "--emotion", "fear", "--clip", upload / "shadow.wav",
                             "--keep-media"))
    assert "symbolic link" in err and store.records() == []
    assert store.add(emotion="sad", media_path=CLIP, consent_keep_media=True).media_kind == "audio"


def test_erase_takes_a_receipt_in_any_letter_case(tmp_path):
    store = FeedbackStore(tmp_path)
    a, b, c = (store.add(emotion="happy", media_path=CLIP, consent_keep_media=True) for _ in range(3))
    assert store.get(a.id.upper()) == a and store.erase(f"  `{a.id.upper()}` ")
    assert store.get(a.id) is None and not (tmp_path / "media" / a.id).exists()
    p = cli("erase", "--store", tmp_path, b.id.upper())
    assert p.returncode == 0 and p.stdout.strip() == f"erased {b.id}"
    store.record_path(c.id).write_text("[1, 2, 3]")  # a record that went bad is still erased by its receipt
    assert store.records() == [] and store.quarantined() == [f"{c.id}.jsonl"]
    assert store.erase(c.id) and store.quarantined() == [] and not (tmp_path / "media" / c.id).exists()
    assert {p.name for p in (tmp_path / "sync" / "erased").iterdir()} == {a.id, b.id, c.id}


def test_a_record_names_no_server_path_or_upload_name(tmp_path, tiny_model):
    from stresslab import analyze

    server = tmp_path / "gradio" / "9a8b7c6d"
    server.mkdir(parents=True)
    upload = Path(shutil.copy(FLV, server / "private_interview_john_doe.flv"))
    result = analyze(upload, model=tiny_model).to_dict()
    assert result["clip"]["source"] == str(upload)  # what the analysis says; the record must not keep it
    store = FeedbackStore(tmp_path / "s")
    for keep in (False, True):
        record = correction_record(result, "fear", stress_rating=4, note=" n ", keep_media=keep, media_path=upload,
                                   app_version="app 1")
        saved = store.add(record, media_path=upload)
        on_disk = store.record_path(saved.id).read_text()
        assert "private_interview" not in on_disk and "gradio" not in on_disk and str(tmp_path) not in on_disk
        assert saved.model_output["clip"].get("source") == ("clip.flv" if keep else None)
        assert saved.media == ("clip.flv" if keep else None) and saved.consent_keep_media is keep
        assert (saved.note, saved.stress_rating, saved.model_version) == ("n", 4, result["model"]["version"])
        assert saved.model_output["emotion"] == result["emotion"] and saved.model_output["clip"]["kind"] == "video"
    assert result["clip"]["source"] == str(upload)  # the caller's dict is left as it was
    shown = tmp_path / "shown.json"
    shown.write_text(json.dumps(result))
    p = cli("add", "--store", store.root, "--emotion", "none", "--clip", upload, "--model-output", shown)
    assert p.returncode == 0, p.stderr
    on_disk = store.record_path(p.stdout.strip()).read_text()
    assert "private_interview" not in on_disk and "gradio" not in on_disk


def test_a_second_save_updates_the_record_and_withdrawn_consent_reaches_the_hub(tmp_path, hub):
    store = FeedbackStore(tmp_path / "s")
    sync = HubSync(store, "lab/c", TOKEN, public_repo_id="lab/p", endpoint=hub.url, timeout=5.0)
    first = store.add(emotion="sad", media_path=CLIP, consent_keep_media=True, consent_share=True)
    other = store.add(emotion="happy", consent_share=True)
    sync.push_once()
    assert f"media/{first.id}/clip.mp3" in hub.repos["lab/p"] and f"records/{first.id}.jsonl" in hub.repos["lab/p"]

    second = store.replace(first.id.upper(), CorrectionRecord(emotion="fear", stress_rating=2, note="on reflection"))
    assert (second.id, second.created_utc, second.media) == (first.id, first.created_utc, None)
    assert store.records() == [second, other] and not (store.root / "media" / first.id).exists()
    assert sync.status()["pending"] == 2  # the update, for each repo
    assert sync.push_once() == {"sent": 2, "erased": 0}
    private, public = hub.repos["lab/c"], hub.repos["lab/p"]
    assert private[f"records/{first.id}.jsonl"] == store.record_path(first.id).read_bytes()  # the new version
    assert f"media/{first.id}/clip.mp3" not in private  # the clip is no longer kept: gone from the Hub too
    assert not [f for f in public if first.id in f] and f"records/{other.id}.jsonl" in public  # no longer shared
    assert sync.status()["pending"] == 0 and not list((store.root / "sync" / "updated").iterdir())
    assert sync.push_once() == {"sent": 0, "erased": 0}

    third = store.replace(first.id, CorrectionRecord(emotion="fear", consent_keep_media=True, consent_share=True),
                          media_path=FLV)  # shared again, with another clip
    sync.push_once()
    assert third.media == "clip.flv" and store.media_path(third).read_bytes() == FLV.read_bytes()
    assert hub.repos["lab/p"][f"media/{first.id}/clip.flv"] == FLV.read_bytes()
    with pytest.raises(ValueError, match="no record"):
        store.replace("f" * 32, CorrectionRecord(emotion="fear"))
