"""Annotation collections (issue #16) on real clips copied from ../shared/data: the CLI end to end, the queue, the
agreement figures against a hand computation, the export through datasets.load_dataset, a Hub dataset as a
source, 20 annotators saving at once from separate processes, pre-labelling killed and resumed, erasure by receipt
and the Hub sync of annotations."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import CREMAD, EMODB, SHARED
from fake_hub import FakeHub

from stresslab.collections import cli
from stresslab.collections.agreement import CLASSES
from stresslab.collections.annotations import AlreadyLabelled, AnnotationStore, annotation
from stresslab.collections.collection import Collection
from stresslab.collections.queue import next_clips, progress

ROOT = Path(__file__).resolve().parents[1]
RAVDESS = SHARED / "ravdess-speech"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent (the real clips)")


@pytest.fixture
def hub(monkeypatch):
    """The fake Hub on 127.0.0.1 (tests/fake_hub.py); the suite's offline switch is lifted for this loopback server
    only, so the real huggingface_hub client code runs against it."""
    import huggingface_hub.constants
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    from stresslab.corrections import hub_sync

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    hub = FakeHub()
    yield hub
    hub.close()
    hub_sync._request_timeout = None  # the sync's timeout must not leak into other tests
    set_client_factory(_http.default_client_factory)


def real_clips(folder: Path) -> Path:
    """8 real clips of three corpora and four formats: CREMA-D flv + mp3, EmoDB wav, RAVDESS flac."""
    folder.mkdir(parents=True, exist_ok=True)
    picks = [*sorted(CREMAD.glob("1001_*.flv"))[:3], *sorted(CREMAD.glob("1002_*.mp3"))[:2],
             *sorted((EMODB / "wav").glob("03a01*.wav"))[:2], *sorted((RAVDESS / "Actor_01").glob("*.flac"))[:1]]
    for p in picks:
        shutil.copy(p, folder / p.name)
    return folder


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def hand_alpha_nominal(units: dict[str, list[str]]) -> float:
    """Krippendorff's alpha (nominal) from its coincidence-matrix definition, written out independently."""
    pairable = {u: v for u, v in units.items() if len(v) >= 2}
    o: Counter = Counter()
    for values in pairable.values():
        m = len(values)
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    o[a, b] += 1 / (m - 1)
    n_c: Counter = Counter()
    for (a, _), w in o.items():
        n_c[a] += w
    n = sum(n_c.values())
    d_o = sum(w for (a, b), w in o.items() if a != b)
    d_e = sum(n_c[a] * n_c[b] for a in n_c for b in n_c if a != b)
    return 1 - (n - 1) * d_o / d_e


def test_cli_label_stats_export_and_erase(tmp_path, capsys):
    import datasets

    clips, store = real_clips(tmp_path / "clips"), str(tmp_path / "store")
    code, out, _ = run_cli(capsys, "create", "interviews", "--from", str(clips), "--consent",
                           "Public corpora: CREMA-D (ODbL), EmoDB, RAVDESS (CC BY-NC-SA)", "--labels-per-clip", "3",
                           "--store", store)
    assert code == 0 and "8 clips" in out
    assert run_cli(capsys, "create", "interviews", "--from", str(clips), "--consent", "x", "--store", store)[0] == 2
    ids = sorted(p.stem for p in clips.iterdir())
    table = {  # annotator -> answers for the first five clips (stress = position + 1)
        "ana": ["anger", "disgust", "fear", "happy", "none"],
        "ben": ["anger", "disgust", "sad", "happy", "cant_tell"],
        "cy": ["anger", "neutral", "fear", "sad", "none"],
    }
    receipts = {}
    for who, answers in table.items():
        for i, answer in enumerate(answers):
            stress = str(min(5, i + 1 + (who == "cy")))
            code, out, err = run_cli(capsys, "label", "interviews", "--annotator", who, "--clip", ids[i],
                                     "--emotion", answer, "--stress", stress, "--face", "anger", "--store", store)
            assert code == 0, err
            receipts[who, ids[i]] = out.strip()
    code, _, err = run_cli(capsys, "label", "interviews", "--annotator", "ana", "--clip", ids[0], "--emotion", "sad",
                           "--store", store)
    assert code == 2 and "already labelled" in err  # never the same clip twice to one annotator
    assert run_cli(capsys, "label", "interviews", "--annotator", "ana", "--clip", "nope", "--emotion", "sad",
                   "--store", store)[0] == 2

    code, out, _ = run_cli(capsys, "stats", "interviews", "--json", "--store", store)
    stats = json.loads(out)
    units = {ids[i]: [table[w][i] for w in table if table[w][i] != "cant_tell"] for i in range(5)}
    assert stats["alpha_emotion"] == pytest.approx(hand_alpha_nominal(units), abs=1e-9)
    assert stats["labels"] == 15 and stats["clips_with_k_labels"] == 5 and stats["annotators"] == 3
    assert 0 < stats["alpha_stress"] < 1
    conf = stats["confusion"]  # symmetric, ordered pairs of different annotators' answers
    assert conf == [list(r) for r in zip(*conf, strict=True)]
    assert conf[CLASSES.index("anger")][CLASSES.index("anger")] == 6  # 3 annotators agree on clip 0: 3 * 2 pairs
    ana_alone = {u: [table[w][i] for w in ("ben", "cy") if table[w][i] != "cant_tell"] for i, u in enumerate(ids[:5])}
    assert stats["per_annotator"]["ana"]["alpha_without"] == pytest.approx(hand_alpha_nominal(ana_alone))
    # ana vs the others' majority: clip0 anger=anger; 1: disgust vs tie; 2: fear vs tie; 3: happy vs tie; 4: none
    assert stats["per_annotator"]["ana"]["compared"] == 2 and stats["per_annotator"]["ana"]["agrees_with_others"] == 1

    out_dir = tmp_path / "export"
    assert run_cli(capsys, "export", "interviews", str(out_dir), "--store", store)[0] == 0
    ds = datasets.load_dataset(str(out_dir), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == 5 and set(ds["clip_id"]) == set(ids[:5])
    row = ds[ds["clip_id"].index(ids[0])]
    assert row["majority"] == "anger" and row["n_labels"] == 3 and len(row["annotations"]) == 3
    assert row["soft_label"] == pytest.approx([1.0 if c == "anger" else 0.0 for c in CLASSES])
    row = ds[ds["clip_id"].index(ids[4])]  # none, cant_tell, none
    assert row["majority"] == "none" and row["soft_label"][CLASSES.index("none")] == 1.0
    assert sorted(a["answer"] for a in row["annotations"]) == ["cant_tell", "none", "none"]
    assert (out_dir / row["file"]).read_bytes() == (clips / f"{ids[4]}{Path(row['file']).suffix}").read_bytes()
    card = (out_dir / "README.md").read_text()
    assert "CREMA-D (ODbL), EmoDB, RAVDESS" in card and f"emotion (nominal) {stats['alpha_emotion']:.3f}" in card

    code, out, _ = run_cli(capsys, "erase", "interviews", receipts["ana", ids[0]].upper(), "--store", store)
    assert code == 0
    assert json.loads(run_cli(capsys, "stats", "interviews", "--json", "--store", store)[1])["labels"] == 14
    code, out, _ = run_cli(capsys, "next", "interviews", "--annotator", "ana", "--store", store)
    assert out.strip() == ids[0]  # erased: ana may label it again


def test_queue_k_labels_never_twice_and_uncertain_first():
    ids = [f"c{i}" for i in range(7)]
    records = []
    for _ in range(20):  # three annotators take turns until nothing is left for anyone
        for who in ("a", "b", "c"):
            queue = next_clips(ids, records, who, 2, "random", seed=3)
            if queue:
                records.append(annotation("x", queue[0], who, "sad"))
    per_clip = Counter(r.clip_id for r in records)
    assert per_clip == dict.fromkeys(ids, 2)
    assert len({(r.annotator, r.clip_id) for r in records}) == len(records)
    assert progress(ids, records, 2, "a").labelled == 7
    pre = {"c1": {"entropy": 0.2, "disagreement": 0.0}, "c4": {"entropy": 1.7, "disagreement": 0.5},
           "c5": {"entropy": 1.0, "disagreement": 0.0}}
    assert next_clips(ids, [], "a", 2, "uncertain", prelabels=pre)[:3] == ["c4", "c5", "c1"]
    assert next_clips(ids, [], "a", 2, "random", skipped={"c4"})[-1] == "c4"  # skipped: back of the queue


def test_a_bad_file_among_annotations_is_quarantined_and_the_rest_read(tmp_path):
    store = AnnotationStore(tmp_path)
    good = store.add(annotation("c", "clip1", "ana", "fear", face="fear"))
    (tmp_path / "records" / ("b" * 32 + ".jsonl")).write_text('{"emotion": "joy"')  # truncated, unknown emotion
    os.symlink(store.store.record_path(good.id), tmp_path / "records" / ("c" * 32 + ".jsonl"))
    assert [(r.id, r.face_emotion) for r in store.records()] == [(good.id, "fear")]
    assert sorted(store.store.quarantined()) == ["b" * 32 + ".jsonl", "c" * 32 + ".jsonl"]
    assert [r.id for r in store.records()] == [good.id]


def _save_many(root: str, who: str, clip_ids: list[str], go) -> None:
    go.wait()
    store = AnnotationStore(root)
    for c in clip_ids:
        store.add(annotation("crowd", c, who, "fear", stress=3, note=f"{who} on {c}"))


def _save_same(root: str, go, results) -> None:
    go.wait()
    try:
        AnnotationStore(root).add(annotation("crowd", "c0", "twin", "sad"))
        results.put("saved")
    except AlreadyLabelled:
        results.put("refused")


def test_twenty_annotators_saving_at_once_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    ids = [f"c{i}" for i in range(5)]
    procs = [ctx.Process(target=_save_many, args=(str(tmp_path), f"annotator-{n:02d}", ids, go)) for n in range(20)]
    procs += [ctx.Process(target=_save_same, args=(str(tmp_path), go, results)) for _ in range(4)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every process is waiting at the gate
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    records = AnnotationStore(tmp_path).records()
    assert Counter(r.annotator for r in records if r.annotator != "twin") == {f"annotator-{n:02d}": 5
                                                                              for n in range(20)}
    assert {(r.annotator, r.clip_id, r.note) for r in records if r.annotator != "twin"} == {
        (f"annotator-{n:02d}", c, f"annotator-{n:02d} on {c}") for n in range(20) for c in ids}
    assert sorted(results.get(timeout=5) for _ in range(4)) == ["refused"] * 3 + ["saved"]  # one person, one label
    assert not list((tmp_path / "tmp").iterdir())


def test_prelabel_killed_then_resumed_redoes_nothing(tmp_path, tiny_model_dir, capsys):
    clips, store = real_clips(tmp_path / "clips"), str(tmp_path / "store")
    assert run_cli(capsys, "create", "pre", "--from", str(clips), "--consent", "public corpora", "--order",
                   "uncertain", "--store", store)[0] == 0
    pre_dir = Path(store) / "collections" / "pre" / "prelabels"
    cmd = [sys.executable, "-m", "stresslab.collections.cli", "prelabel", "pre", "--model", str(tiny_model_dir),
           "--store", store]
    env = {**os.environ, "STRESSLAB_THREADS": "1", "STRESSLAB_WHISPER": "none"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 240
    while len(list(pre_dir.glob("*.json"))) < 3:
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.stem: (p.stat().st_mtime_ns, json.loads(p.read_text())["run"]) for p in pre_dir.glob("*.json")}
    assert 3 <= len(first) < 8 and len({run for _, run in first.values()}) == 1
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"pre-labelled {8 - len(first)} clip(s), {len(first)} already done, 0 failed" in done.stdout
    after = {p.stem: (p.stat().st_mtime_ns, json.loads(p.read_text())["run"]) for p in pre_dir.glob("*.json")}
    assert len(after) == 8 and all(after[c] == first[c] for c in first)  # finished clips untouched
    assert len({run for c, (_, run) in after.items() if c not in first}) == 1
    pre = json.loads(next(pre_dir.glob("*.json")).read_text())
    assert set(pre["probabilities"]) == set(CLASSES[:6]) and pre["entropy"] >= 0 and 0 <= pre["disagreement"] <= 1
    assert set(pre["modalities"]) == {"video", "audio", "text"}
    assert pre["model"]["source"] == tiny_model_dir.name  # a folder's name, never the server's path
    # the uncertain-first order follows the stored entropies + disagreement
    c = Collection.load(store, "pre")
    code, out, _ = run_cli(capsys, "next", "pre", "--annotator", "z", "--store", store)
    scores = {p.stem: json.loads(p.read_text()) for p in pre_dir.glob("*.json")}
    assert out.strip() == max(scores, key=lambda k: scores[k]["entropy"] / 1.791759469228055
                              + scores[k]["disagreement"]) and c.order == "uncertain"


def test_hub_dataset_source_and_correction_store_source(tmp_path, capsys):
    import datasets

    from stresslab import FeedbackStore

    wavs = sorted((EMODB / "wav").glob("08a0*.wav"))[:3]
    ds = datasets.Dataset.from_dict({"name": [p.stem for p in wavs], "audio": [str(p) for p in wavs]})
    ds.cast_column("audio", datasets.Audio(decode=False)).to_parquet(str(tmp_path / "hf" / "data" / "train.parquet"))
    store = str(tmp_path / "store")
    code, out, err = run_cli(capsys, "create", "emodb", "--from", f"hf:{tmp_path / 'hf'}", "--media-column", "audio",
                             "--id-column", "name", "--consent", "EmoDB, CC0", "--store", store)
    assert code == 0 and "3 clips" in out, err
    c = Collection.load(store, "emodb")
    clip = c.media(wavs[1].stem)
    assert clip.kind == "audio" and clip.path.read_bytes() == wavs[1].read_bytes()

    corrections = FeedbackStore(tmp_path / "corr")
    kept = corrections.add(emotion="fear", media_path=CREMAD / "1002_DFA_FEA_XX.mp3", consent_keep_media=True)
    corrections.add(emotion="sad")  # no media kept: not in the collection
    assert run_cli(capsys, "create", "mine", "--from", f"corrections:{tmp_path / 'corr'}", "--consent",
                   "users ticked keep-media", "--store", store)[0] == 0
    assert [x.id for x in Collection.load(store, "mine").clips()] == [kept.id]


def test_annotations_sync_to_a_private_hub_repo_and_erasure_follows(tmp_path, hub):
    from stresslab import HubSync

    store = AnnotationStore(tmp_path)
    a = store.add(annotation("c", "clip1", "ana", "happy", stress=2, face="happy", voice="sad"))
    b = store.add(annotation("c", "clip1", "ben", "cant_tell"))
    sync = HubSync(store.store, "lab/annotations", "hf_test_token", endpoint=hub.url, timeout=2.0)
    assert sync.push_once()["sent"] == 2 and hub.private["lab/annotations"] is True
    held = json.loads(hub.repos["lab/annotations"][f"records/{a.id}.jsonl"])
    assert (held["annotator"], held["voice_emotion"], held["words_emotion"]) == ("ana", "sad", "")
    assert store.erase(b.id)
    sync.push_once()
    assert f"records/{b.id}.jsonl" not in hub.repos["lab/annotations"]
    assert [r.id for r in store.records()] == [a.id] and store.records()[0].voice_emotion == "sad"


def test_push_exports_to_a_private_repo_and_refuses_a_public_one(tmp_path, capsys, monkeypatch, hub):
    clips, store = real_clips(tmp_path / "clips"), str(tmp_path / "store")
    run_cli(capsys, "create", "p", "--from", str(clips), "--consent", "consent form v2", "--store", store)
    clip = sorted(p.stem for p in clips.iterdir())[0]
    run_cli(capsys, "label", "p", "--annotator", "a", "--clip", clip, "--emotion", "fear", "--store", store)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert run_cli(capsys, "push", "p", "--repo", "lab/p", "--store", store)[0] == 2  # no token: refused
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    code, out, err = run_cli(capsys, "push", "p", "--repo", "lab/p", "--store", store)
    assert code == 0, err
    assert hub.private["lab/p"] is True and "consent form v2" in hub.repos["lab/p"]["README.md"].decode()
    assert {"data/train-00000.parquet", "stats.json", f"media/{clip}{Path(next(clips.glob(clip + '.*'))).suffix}"
            } <= set(hub.repos["lab/p"])
    hub.repos["lab/open"], hub.private["lab/open"] = {}, False
    code, _, err = run_cli(capsys, "push", "p", "--repo", "lab/open", "--store", store)
    assert code == 2 and "public" in err and hub.repos["lab/open"] == {}


def test_the_tab_syncs_annotations_to_a_private_repo(tmp_path, capsys, monkeypatch, hub):
    from stresslab import Workspace
    from ui.collections import _SYNCS, annotation_sync

    clips, store = real_clips(tmp_path / "clips"), str(tmp_path / "store")
    run_cli(capsys, "create", "s", "--from", str(clips), "--consent", "ok", "--store", store)
    ws = Workspace(store, "s")
    assert annotation_sync(ws) is None  # no token, no repo: annotations stay local
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("STRESSLAB_COLLECTIONS_REPO", "lab/ann")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    saved = ws.save(ws.next_clip("ana"), "ana", "sad", stress=2, voice="sad")
    sync = annotation_sync(ws)
    assert sync is annotation_sync(ws)  # one per collection
    sync.nudge()
    assert sync.flush(timeout=30)
    assert hub.private == {"lab/ann-s": True}
    assert hub.repos["lab/ann-s"][f"records/{saved.id}.jsonl"] == ws.annotations.store.record_path(
        saved.id).read_bytes()
    sync.stop()
    _SYNCS.clear()


def test_label_stats_export_stay_free_of_torch(tmp_path):
    code = ("import sys; import stresslab.collections.cli, stresslab.collections.export; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')], 'model code'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
