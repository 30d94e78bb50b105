"""A short real training run on small subsets of the real corpora: every stage runs, the loss goes down, the
checkpoint loads and evaluates through the product's path, and a rerun resumes instead of starting again."""

import json
import shutil

import pytest
from conftest import CREMAD, EMODB, FER, GOEMOTIONS

from stresslab import StressModel, analyze
from training.evaluate import evaluate, select_records
from training.prepare import prepare
from training.train import load_config, main


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    src = root / "src"
    fer = src / "fer"
    for split in ("train", "val"):
        for cls in ("angry", "disgust", "fear", "happy", "neutral", "sad"):
            (fer / split / cls).mkdir(parents=True)
            for p in sorted((FER / split / cls).glob("*.jpg"))[: 40 if split == "train" else 10]:
                shutil.copy(p, fer / split / cls)
    go = src / "go"
    go.mkdir()
    shutil.copy(GOEMOTIONS / "labels.txt", go)
    lines = (GOEMOTIONS / "train.tsv").read_text(encoding="utf-8").splitlines()
    (go / "train.tsv").write_text("\n".join(lines[:1500]) + "\n", encoding="utf-8")
    emodb = src / "emodb" / "wav"
    emodb.mkdir(parents=True)
    for p in sorted((EMODB / "wav").glob("*.wav")):
        if p.stem[2:5] in ("a01", "a02", "a04", "a05"):  # 4 of the 10 sentences, every speaker
            shutil.copy(p, emodb)
    out = root / "data"
    for corpus, path in (("fer2013", fer), ("goemotions", go), ("emodb", src / "emodb"), ("cremad", CREMAD)):
        prepare(corpus, path, out / corpus, link=True)
    return out


def test_config_overrides(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('video_epochs = 3\nstages = ["audio"]\n')
    cfg = load_config(str(cfg_file), ["audio_lr=0.01", "out=runs/x"])
    assert cfg.video_epochs == 3 and cfg.stages == ["audio"] and cfg.audio_lr == 0.01 and cfg.out == "runs/x"
    with pytest.raises(SystemExit, match="unknown settings"):
        load_config(None, ["nope=1"])


def test_short_real_run_lowers_the_loss_and_resumes(corpora, tmp_path):
    out = tmp_path / "run"
    args = ["--config", "training/configs/smoke.toml", "--set", f'out="{out}"', f'data="{corpora}"',
            "audio_epochs=8", "video_limit=0"]
    assert main(args) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    audio_losses = [r["loss"] for r in log if r["stage"] == "audio" and "loss" in r]
    assert audio_losses[-1] < audio_losses[0]
    state = json.loads((out / "state.json").read_text())
    assert state["done"] == ["video", "audio", "text", "fusion", "joint"]
    fusion_losses = [r["loss"] for r in log if r["stage"] == "fusion" and "loss" in r]
    assert len(fusion_losses) >= 2 and fusion_losses[-1] < fusion_losses[0]
    model = StressModel.from_pretrained(out / "checkpoint")
    r = analyze(CREMAD / "1001_DFA_ANG_XX.flv", text="Don't forget a jacket", model=model)
    assert abs(sum(r.probabilities.values()) - 1) < 1e-3
    report = evaluate(model, select_records(str(corpora / "cremad"), None, None), "fused")
    assert report["n"] == 12 and set(report["ablation"]) == {"without_video", "without_audio", "without_text"}
    # a rerun resumes after the last finished stage: nothing is trained again
    n_lines = len(log)
    assert main(args) == 0
    again = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()][n_lines:]
    assert {r["stage"] for r in again} == {"config"}


def test_finetune_on_corrections(corpora, tmp_path):
    """Corrections -> clip folder -> the feedback stage changes the checkpoint; evaluate reads it."""
    from stresslab.corrections.store import FeedbackStore

    base = tmp_path / "base"
    assert main(["--config", "training/configs/smoke.toml", "--set", f'out="{base}"', f'data="{corpora}"',
                 'stages=["video", "audio", "text", "fusion"]']) == 0
    store = FeedbackStore(tmp_path / "store")
    for i, p in enumerate(sorted(CREMAD.glob("*.flv")) + sorted(CREMAD.glob("*.mp3"))):
        emotion = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
                   "SAD": "sad"}[p.stem.split("_")[2]]
        store.add(emotion=emotion, stress_rating=1 + i % 5, transcript="Don't forget a jacket.", media_path=p,
                  consent_keep_media=True)
    prepare("feedback", tmp_path / "store", tmp_path / "fb")
    tuned = tmp_path / "tuned"
    assert main(["--config", "training/configs/finetune.toml", "--set", f'out="{tuned}"', f'data="{corpora}"',
                 f'init="{base / "checkpoint"}"', f'feedback="{tmp_path / "fb"}"', "feedback_steps=6",
                 "joint_batch=8", "stress_min_ratings=10"]) == 0
    before = StressModel.from_pretrained(base / "checkpoint").state_dict()
    after = StressModel.from_pretrained(tuned / "checkpoint").state_dict()
    assert any((before[k].float() - after[k].float()).abs().max() > 0 for k in before if k in after)
    tuned_model = StressModel.from_pretrained(tuned / "checkpoint")
    assert tuned_model.config.stress_head  # 12 rated corrections >= 10: a learned stress head replaces the mapping
    r = analyze(CREMAD / "1002_DFA_SAD_XX.mp3", model=tuned_model)
    assert r.stress["method"] == "learned stress head" and 0 <= r.stress["score"] <= 1
    report = evaluate(tuned_model, select_records(str(tmp_path / "fb"), None, None), "fused")
    assert report["n"] == 12
