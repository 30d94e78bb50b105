"""The correction store: concurrent writers, crashes, consent, erasure, dataset loading, Hub sync against a
local fake of the Hub's HTTP API (refusing, hanging, coming back), and the `stresslab corrections` CLI."""

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import CREMAD
from fake_hub import FakeHub

from stresslab.feedback import CorrectionRecord, FeedbackStore
from stresslab.hub_sync import HubSync

CLIP = CREMAD / "1002_DFA_ANG_XX.mp3"
TOKEN = "hf_secret_token_for_tests"
WRITER = textwrap.dedent("""
    import sys
    from stresslab.feedback import FeedbackStore
    store = FeedbackStore(sys.argv[1])
    print("ready", flush=True)
    for i in range(int(sys.argv[2])):
        store.add(emotion="fear", stress_rating=1 + i % 5, consent_keep_media=True, media_path=sys.argv[3],
                  model_output={"emotion": "anger", "pad": "x" * 20000})
""")


def test_record_validation():
    with pytest.raises(ValueError, match="expected one of"):
        CorrectionRecord(emotion="surprise")
    with pytest.raises(ValueError, match="1 to 5"):
        CorrectionRecord(emotion="sad", stress_rating=7)
    with pytest.raises(ValueError, match="consent"):
        CorrectionRecord(emotion="sad", media="clip.mp3")
    assert CorrectionRecord(emotion=None).emotion is None  # "none of these"


def test_consent_rules(tmp_path):
    store = FeedbackStore(tmp_path)
    kept = store.add(emotion="sad", media_path=CLIP, consent_keep_media=True)
    not_kept = store.add(emotion="sad", media_path=CLIP)  # no consent: the media is not stored
    assert store.media_path(kept).read_bytes() == CLIP.read_bytes() and kept.media_kind == "audio"
    assert store.media_path(not_kept) is None and not (tmp_path / "media" / not_kept.id).exists()
    assert [r.id for r in store.records()] == [kept.id, not_kept.id]


def test_fifty_concurrent_writer_processes(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "1", str(CLIP)]) for _ in range(50)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    store = FeedbackStore(tmp_path)
    records = store.records()
    assert len(records) == 50 and len({r.id for r in records}) == 50
    assert all(store.media_path(r).stat().st_size == CLIP.stat().st_size for r in records)


def test_sigkill_at_random_points_leaves_no_half_record(tmp_path):
    rng = random.Random(0)
    for _ in range(20):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "1000", str(CLIP)], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
    store = FeedbackStore(tmp_path)
    records = store.records()  # every record parses: no half record
    assert records and all(store.media_path(r) is not None for r in records)  # media lands before its record
    store.gc()
    assert not list((tmp_path / "tmp").iterdir())
    assert {p.name for p in (tmp_path / "media").iterdir()} == {r.id for r in records}
    import datasets

    ds = datasets.load_dataset("json", data_files=str(tmp_path / "records" / "*.jsonl"), split="train")
    assert len(ds) == len(records)


def test_erase_and_dataset(tmp_path):
    store = FeedbackStore(tmp_path)
    r = store.add(emotion="happy", stress_rating=2, media_path=CLIP, consent_keep_media=True, note="n")
    other = store.add(emotion="anger")
    assert len(store.to_dataset()) == 2
    assert store.erase(r.id) and not store.erase(r.id)
    assert store.get(r.id) is None and not (tmp_path / "media" / r.id).exists()
    assert [x.id for x in store.records()] == [other.id]
    with pytest.raises(ValueError, match="receipt id"):
        store.erase("../../etc")


def test_hub_sync_refuses_hangs_then_drains(tmp_path, caplog):
    hub = FakeHub()
    store = FeedbackStore(tmp_path)
    sync = HubSync(store, "lab/corrections", TOKEN, public_repo_id="lab/public", every_seconds=0.2,
                   endpoint=hub.url, timeout=2)
    try:
        hub.mode = "refuse"
        sync.start()
        private = store.add(emotion="fear", media_path=CLIP, consent_keep_media=True)
        shared = store.add(emotion="sad", consent_share=True)
        time.sleep(1.0)
        assert sync.status()["pending"] == 3 and sync.status()["last_error"]  # 2 private + 1 public, nothing lost
        hub.mode = "hang"
        t = time.perf_counter()
        store.add(emotion="happy")  # the app's write path never waits for the Hub
        assert time.perf_counter() - t < 1.0
        hub.mode = "ok"
        assert sync.flush(timeout=30)
        repo, public = hub.repos["lab/corrections"], hub.repos["lab/public"]
        assert sum(p.startswith("records/") for p in repo) == 3 and f"media/{private.id}/clip.mp3" in repo
        assert list(public) == [f"records/{shared.id}.jsonl"]  # only the shared record goes public
        assert hub.private == {"lab/corrections": True, "lab/public": False}
        sent = [(r, p) for r, added, _ in hub.commits for p in added]
        assert len(sent) == len(set(sent))  # nothing sent twice to the same repo
        store.erase(private.id)
        sync.nudge()
        assert sync.flush(timeout=30)
        assert f"records/{private.id}.jsonl" not in repo and not any(p.startswith(f"media/{private.id}") for p in repo)
        # a new process (fresh ledger knowledge from the Hub) does not resend
        n_commits = len(hub.commits)
        (tmp_path / "sync" / "lab__corrections.json").unlink()
        again = HubSync(store, "lab/corrections", TOKEN, endpoint=hub.url, timeout=2)
        assert again.push_once() == 0 and len(hub.commits) == n_commits
        assert all(h == f"Bearer {TOKEN}" for h in hub.auth_headers)
        ledgers = "".join(p.read_text() for p in (tmp_path / "sync").glob("*.json"))
        status_text = str(sync.status()) + caplog.text + ledgers
        assert TOKEN not in status_text
        assert TOKEN not in "".join(p.read_text() for p in (tmp_path / "records").glob("*"))
    finally:
        sync.stop()
        hub.close()


def test_from_env_only_with_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("STRESSLAB_FEEDBACK_REPO", "lab/x")
    assert HubSync.from_env(FeedbackStore(tmp_path)) is None


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "stresslab.cli", "corrections", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def test_cli_end_to_end(tmp_path):
    store = str(tmp_path / "store")
    p = run_cli("add", "--store", store, "--clip", str(CLIP), "--emotion", "anger", "--stress", "4", "--keep-media")
    assert p.returncode == 0
    rid = p.stdout.strip()
    assert len(rid) == 32
    assert rid in run_cli("list", "--store", store).stdout
    assert run_cli("export", "--store", store, str(tmp_path / "out")).returncode == 0
    assert (tmp_path / "out" / "records" / f"{rid}.jsonl").exists()
    hub = FakeHub()
    try:
        p = run_cli("push", "--store", store, "--repo", "lab/c", env={"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url})
        assert p.returncode == 0 and "pushed 1" in p.stdout
        hub.mode = "refuse"
        run_cli("add", "--store", store, "--emotion", "none")
        p = run_cli("push", "--store", store, "--repo", "lab/c", env={"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url})
        assert p.returncode == 2 and p.stderr.startswith("error: push failed") and TOKEN not in p.stderr
    finally:
        hub.close()
    assert run_cli("erase", "--store", store, rid).returncode == 0
    p = run_cli("erase", "--store", store, rid)
    assert p.returncode == 2 and p.stderr.startswith("error: no record")
    p = run_cli("add", "--store", store, "--emotion", "surprise")
    assert p.returncode == 2


logging.getLogger("stresslab").setLevel(logging.INFO)
