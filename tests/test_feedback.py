"""The correction store: validation, consent, concurrent writers, SIGKILLed writers, erasure, loading with
`datasets`, Hub sync against a local fake of the Hub's HTTP API (refusing, hanging, losing a reply, coming back),
and the `stresslab corrections` CLI."""

import collections
import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import datasets
import pytest
from conftest import CREMAD
from fake_hub import FakeHub

from stresslab.clip import load_clip
from stresslab.corrections import hub_sync
from stresslab.corrections.hub_sync import HubSync
from stresslab.corrections.store import CorrectionRecord, FeedbackStore

CLIP = CREMAD / "1002_DFA_ANG_XX.mp3"
TOKEN = "hf_secret_token_for_tests_0123456789"
WRITER = textwrap.dedent("""
    import os, sys, time
    import stresslab.clip  # loaded before "ready": kills are meant to land in writes, not in imports
    from stresslab.corrections.store import FeedbackStore
    store, n, media, go = FeedbackStore(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    print("ready", flush=True)
    while go != "-" and not os.path.exists(go):
        time.sleep(0.005)
    for i in range(n):
        store.add(emotion="fear", stress_rating=1 + i % 5, consent_keep_media=True, media_path=media,
                  model_output={"emotion": "anger", "pad": "x" * 20000})
""")
datasets.disable_progress_bars()


def load_records(folder: Path) -> datasets.Dataset:
    return datasets.load_dataset("json", data_files=str(folder / "records" / "*.jsonl"), split="train",
                                 cache_dir=str(folder.parent / f".hf-cache-{time.monotonic_ns()}"))


def wait_for(condition, timeout=15.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def hub():
    hub = FakeHub()
    yield hub
    hub.close()
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    hub_sync._request_timeout = None  # the 1 s timeout these tests set must not leak into other tests
    set_client_factory(_http.default_client_factory)


def test_record_validation():
    for kwargs, message in [({"emotion": "surprise"}, "expected one of"), ({"emotion": "sad", "stress_rating": 7},
                            "1 to 5"), ({"emotion": "sad", "stress_rating": True}, "1 to 5"),
                            ({"emotion": "sad", "media_kind": "gif"}, "video, audio, image"),
                            ({"emotion": "sad", "model_output": [1]}, "dict"),
                            ({"emotion": "sad", "created_utc": "yesterday"}, "ISO 8601"),
                            ({"emotion": "sad", "id": "../etc"}, "hex"),
                            ({"emotion": "sad", "consent_share": 1}, "True")]:
        with pytest.raises(ValueError, match=message):
            CorrectionRecord(**kwargs)
    r = CorrectionRecord(emotion="sad")
    with pytest.raises(ValueError, match="consent"):
        CorrectionRecord(emotion="sad", id=r.id, media="clip.mp3")
    with pytest.raises(ValueError, match="clip"):
        CorrectionRecord(emotion="sad", media="../../x.mp3", consent_keep_media=True)
    assert CorrectionRecord(emotion=None).emotion is None  # "none of these"


def test_consent_and_round_trip(tmp_path):
    store = FeedbackStore(tmp_path)
    kept = store.add(emotion="sad", media_path=CLIP, consent_keep_media=True, stress_rating=2, note="n",
                     transcript="hi", model_output={"emotion": "anger", "p": [0.5, 0.5]})
    not_kept = store.add(emotion=None, media_path=CLIP)  # no consent: only labels, transcript, model output
    assert store.media_path(kept).read_bytes() == CLIP.read_bytes() and kept.media_kind == "audio"
    assert store.media_path(kept).is_absolute() and kept.media == "clip.mp3"
    assert not_kept.media is None and store.media_path(not_kept) is None
    assert [p.name for p in (tmp_path / "media").iterdir()] == [kept.id]
    assert store.records() == [kept, not_kept] and store.get(kept.id) == kept  # what add returned is what is stored
    with pytest.raises(ValueError, match="already exists"):
        store.add(kept)


def test_load_dataset_whatever_record_comes_first(tmp_path):
    """`datasets` infers column types from the first file: a record full of None must not break the others."""
    store = FeedbackStore(tmp_path / "s")
    store.add(CorrectionRecord(emotion=None, id="0" * 32))  # sorts first: no emotion, rating, text, media
    store.add(CorrectionRecord(emotion="anger", id="f" * 32, stress_rating=5, transcript="Ich bin wütend",
                               consent_keep_media=True, consent_share=True,
                               model_output={"modalities": {"video": None, "text": {"p": [0.1, 0.9]}}, "x": 1.5}),
              media_path=CLIP)
    store.add(emotion="sad", model_output={"modalities": {"video": {"p": [1.0]}}, "faces": [{"box": [1, 2]}]})
    ds = load_records(store.root)
    assert len(ds) == 3
    assert {r.id: r for r in store.records()} == {row["id"]: CorrectionRecord.from_dict(row) for row in ds}
    out = store.export(tmp_path / "out")  # the same files, a folder that datasets reads too
    assert sorted(load_records(out)["id"]) == sorted(ds["id"]) and (out / f"media/{'f' * 32}/clip.mp3").is_file()
    view = store.to_dataset()
    assert view["emotion"] == [None, "anger", "sad"] and view["audio"][1] == str(store.root / "media" / ("f" * 32)
                                                                                / "clip.mp3")
    assert json.loads(view["model_output"][1])["x"] == 1.5
    decoded = store.to_dataset(decode=True)  # Audio/Video/Image where a decoder is importable, else paths
    assert decoded.features["audio"] == datasets.Audio()  # torchcodec is installed here
    assert decoded[0]["audio"] is None and decoded[2]["audio"] is None  # no kept clip
    samples = decoded[1]["audio"].get_all_samples()  # the kept mp3, decoded by datasets' own decoder
    with av.open(str(CLIP)) as container:
        rate = container.streams.audio[0].rate
    assert samples.sample_rate == rate and samples.data.shape[0] == 1
    assert abs(samples.data.shape[1] / rate - load_clip(CLIP).duration) < 0.1
    assert float(samples.data.abs().max()) > 0.05  # sound, not silence


def test_fifty_concurrent_writer_processes(tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "s"), "1", str(CLIP), str(go)],
                              stdout=subprocess.PIPE) for _ in range(50)]
    assert all(p.stdout.readline().strip() == b"ready" for p in procs)
    go.touch()  # all 50 write at once
    assert all(p.wait(timeout=120) == 0 for p in procs)
    store = FeedbackStore(tmp_path / "s")
    records = store.records()
    assert len(records) == 50 and len({r.id for r in records}) == 50
    assert all(store.media_path(r).read_bytes() == CLIP.read_bytes() for r in records)
    assert len(load_records(store.root)) == 50


def test_sigkill_at_random_points_leaves_no_half_record(tmp_path):
    import numpy as np
    import soundfile

    media = tmp_path / "big.wav"  # 2 MB of 16-bit noise: kills land in media copies as well as in record writes
    soundfile.write(media, np.random.default_rng(0).uniform(-0.5, 0.5, (2 << 20) // 2), 16000, subtype="PCM_16")
    rng, mid_write = random.Random(0), 0
    for _ in range(20):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "s"), "100000", str(media), "-"],
                             stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))
        p.send_signal(signal.SIGKILL)
        p.wait()
        store = FeedbackStore(tmp_path / "s")
        records = store.records()  # every record file parses: no half record
        assert all(store.media_path(r).stat().st_size == media.stat().st_size for r in records)  # none without media
        mid_write += bool(store.gc(min_age_s=0))  # a temp file, or media whose record was not written yet
    assert records and mid_write >= 3  # the kills did land inside writes
    assert len(load_records(store.root)) == len(records)
    assert {p.name for p in (tmp_path / "s" / "media").iterdir()} == {r.id for r in records}
    print(f"{len(records)} records after 20 kills, {mid_write} of which landed inside a write")


def test_erase_and_gc(tmp_path):
    store = FeedbackStore(tmp_path)
    r = store.add(emotion="happy", media_path=CLIP, consent_keep_media=True)
    other = store.add(emotion="anger")
    assert store.erase(r.id) and not store.erase(r.id)
    assert store.get(r.id) is None and not (tmp_path / "media" / r.id).exists()
    assert store.records() == [other] and (tmp_path / "sync" / "erased" / r.id).exists()  # queued for the Hub
    with pytest.raises(ValueError, match="receipt id"):
        store.erase("../../etc")
    (tmp_path / "media" / ("a" * 32)).mkdir()  # a crash between media and record
    assert store.gc() == 0 and store.gc(min_age_s=0) == 1  # a write in progress is left alone


def test_hub_sync_refuses_hangs_loses_a_reply_then_drains(tmp_path, hub, caplog):
    caplog.set_level(logging.DEBUG)
    store = FeedbackStore(tmp_path / "s")
    sync = HubSync(store, "lab/corrections", TOKEN, public_repo_id="lab/public", every_minutes=0.005,
                   endpoint=hub.url, timeout=1.0)
    try:
        hub.mode = "refuse"
        sync.start()
        kept = store.add(emotion="fear", media_path=CLIP, consent_keep_media=True)
        shared = store.add(emotion="sad", media_path=CLIP, consent_keep_media=True, consent_share=True)
        shared_no_media = store.add(emotion="happy", media_path=CLIP, consent_share=True)
        wait_for(lambda: sync.failures >= 1)
        assert sync.status()["pending"] == 5 and "500" in sync.status()["last_error"]  # 3 private + 2 public
        hub.mode = "hang"
        wait_for(lambda: hub.held >= 1)  # the sync thread waits on the Hub...
        t = time.perf_counter()
        late = store.add(emotion="neutral")  # ...and the app does not
        assert time.perf_counter() - t < 0.5
        failures = sync.failures
        wait_for(lambda: sync.failures > failures)  # the request timed out
        assert "Timeout" in sync.status()["last_error"]
        hub.mode = "ok"
        assert sync.flush(timeout=30)
        private, public = hub.repos["lab/corrections"], hub.repos["lab/public"]
        assert hub.private == {"lab/corrections": True, "lab/public": False}
        assert sorted(private) == sorted(["README.md", f"media/{kept.id}/clip.mp3", f"media/{shared.id}/clip.mp3"]
                                         + [f"records/{r.id}.jsonl" for r in (kept, shared, shared_no_media, late)])
        assert sorted(public) == sorted(["README.md", f"media/{shared.id}/clip.mp3", f"records/{shared.id}.jsonl",
                                         f"records/{shared_no_media.id}.jsonl"])  # share consent only
        assert private[f"records/{kept.id}.jsonl"] == store.record_path(kept.id).read_bytes()

        hub.mode = "lose-reply"  # the Hub makes the commit but its reply never comes: the client times out
        lost = store.add(emotion="disgust", consent_share=True)
        assert sync.flush(timeout=30)  # the ledger in flight is rebuilt from the repo's files: not sent again
        assert hub.held == 2  # one lost reply for each repo
        hub.mode = "ok"
        for repo in ("lab/corrections", "lab/public"):  # nothing sent twice
            assert f"records/{lost.id}.jsonl" in hub.repos[repo]
            assert not [p for p, n in collections.Counter(hub.added(repo)).items() if n > 1]

        store.erase(kept.id)
        store.erase(shared.id)
        del hub.repos["lab/corrections"][f"records/{late.id}.jsonl"]  # deleted on the Hub: its erasure must not block
        store.erase(late.id)
        assert sync.flush(timeout=30)
        assert not [p for p in hub.repos["lab/corrections"] if kept.id in p or shared.id in p or late.id in p]
        assert not [p for p in hub.repos["lab/public"] if shared.id in p]
        wait_for(lambda: not list((store.root / "sync" / "erased").iterdir()))  # markers go once done
        assert sync.status()["sent"] == 2 + 2 and sync.status()["pending"] == 0

        n_commits = len(hub.commits)  # another process, its ledgers lost: it rebuilds them and sends nothing
        for p in (store.root / "sync").glob("*.json"):
            p.unlink()
        again = HubSync(store, "lab/corrections", TOKEN, public_repo_id="lab/public", endpoint=hub.url, timeout=1.0)
        assert again.push_once() == {"sent": 0, "erased": 0} and len(hub.commits) == n_commits
    finally:
        sync.stop()
    assert set(hub.auth_headers) == {f"Bearer {TOKEN}"}  # the token went to the Hub, and nowhere else:
    stored = "".join(p.read_text(errors="replace") for p in store.root.rglob("*") if p.is_file())
    assert TOKEN not in caplog.text + str(sync.status()) + repr(sync) + stored
    assert "corrections not pushed yet" in caplog.text


def test_private_repo_that_is_public_is_refused(tmp_path, hub):
    hub.repos["lab/open"], hub.private["lab/open"] = {}, False
    store = FeedbackStore(tmp_path)
    store.add(emotion="sad")
    with pytest.raises(PermissionError, match="is public"):
        HubSync(store, "lab/open", TOKEN, endpoint=hub.url, timeout=1.0).push_once()
    assert hub.repos["lab/open"] == {}


def test_from_hub_snapshot_follows_erasures(tmp_path, hub):
    store = FeedbackStore(tmp_path / "s")
    a = store.add(emotion="fear", media_path=CLIP, consent_keep_media=True)
    b = store.add(emotion=None, stress_rating=3)
    sync = HubSync(store, "lab/c", TOKEN, endpoint=hub.url, timeout=1.0)
    sync.push_once()
    copy = FeedbackStore.from_hub("lab/c", tmp_path / "snap", token=TOKEN, endpoint=hub.url)
    assert copy.records() == [a, b] and copy.media_path(a).read_bytes() == CLIP.read_bytes()
    store.erase(a.id)
    sync.push_once()
    copy = FeedbackStore.from_hub("lab/c", tmp_path / "snap", token=TOKEN, endpoint=hub.url)
    assert copy.records() == [b] and not (tmp_path / "snap" / "media" / a.id).exists()


def test_from_env(tmp_path, monkeypatch, hub):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("STRESSLAB_FEEDBACK_REPO", "lab/x")
    assert HubSync.from_env(FeedbackStore(tmp_path)) is None  # no token: corrections stay local
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    sync = HubSync.from_env(FeedbackStore(tmp_path), endpoint=hub.url, timeout=1.0)
    try:
        FeedbackStore(tmp_path).add(emotion="sad")
        assert sync.flush(timeout=20) and len(hub.repos["lab/x"]) == 2  # README.md + the record
    finally:
        sync.stop()


def cli(*args, env=None, main=False):
    module = ["stresslab.cli", "corrections"] if main else ["stresslab.corrections.cli"]
    return subprocess.run([sys.executable, "-m", *module, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def one_error_line(p) -> str:
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("error: ")
    return p.stderr


def test_cli_end_to_end(tmp_path, hub):
    store, shown = tmp_path / "store", tmp_path / "shown.json"
    shown.write_text(json.dumps({"emotion": "anger", "model": {"version": "m1"}}))
    p = cli("add", "--store", store, "--clip", CLIP, "--emotion", "fear", "--stress", "4", "--keep-media", "--share",
            "--text", "hello", "--model-output", shown)
    assert p.returncode == 0, p.stderr
    rid = p.stdout.strip()
    r = FeedbackStore(store).get(rid)
    assert (r.emotion, r.stress_rating, r.transcript, r.model_version, r.media_kind) == ("fear", 4, "hello", "m1",
                                                                                           "audio")
    assert cli("add", "--store", store, "--clip", CLIP, "--emotion", "none").returncode == 0  # clip not kept
    assert rid in cli("list", "--store", store).stdout
    listed = json.loads(cli("list", "--store", store, "--json", main=True).stdout)  # through the main CLI too
    assert [x["emotion"] for x in listed] == ["fear", None] and listed[1]["media"] is None
    assert cli("export", "--store", store, tmp_path / "out").returncode == 0
    assert len(load_records(tmp_path / "out")) == 2
    env = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
    p = cli("push", "--store", store, "--repo", "lab/c", env=env)
    assert p.returncode == 0 and "pushed 2 record(s)" in p.stdout, p.stderr
    hub.mode = "refuse"
    assert cli("add", "--store", store, "--emotion", "sad").returncode == 0
    err = one_error_line(cli("push", "--store", store, "--repo", "lab/c", env=env))
    assert err.startswith("error: push failed, records kept locally") and TOKEN not in err
    hub.mode = "ok"
    assert cli("erase", "--store", store, rid).returncode == 0
    p = cli("push", "--store", store, "--repo", "lab/c", env=env)
    assert "pushed 1 record(s), 1 erasure(s)" in p.stdout and f"records/{rid}.jsonl" not in hub.repos["lab/c"]
    assert "no record" in one_error_line(cli("erase", "--store", store, rid))
    assert "receipt id" in one_error_line(cli("erase", "--store", store, "nope"))
    assert "invalid choice" in one_error_line(cli("add", "--store", store, "--emotion", "surprise"))
    assert "not a correction store" in one_error_line(cli("list", "--store", tmp_path / "missing"))
    assert "HF_TOKEN" in one_error_line(cli("push", "--store", store, env={"HF_TOKEN": ""}))
    shown.write_text("{not json")
    assert "not JSON" in one_error_line(cli("add", "--store", store, "--emotion", "sad", "--model-output", shown))
