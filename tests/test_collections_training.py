"""An exported collection in training: `training.prepare collection` reads it (majority, soft labels, mean stress),
the fusion loss trains on the soft labels, and a short fine-tune (the feedback stage) reads the prepared folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import CREMAD, SHARED
from test_train import corpora  # noqa: F401  (the module-scoped fixture of prepared real corpora)

from stresslab import StressModel
from stresslab.collections import cli
from stresslab.labels import EMOTIONS
from training.clip_folder import read_clip_folder
from training.config import LossWeights
from training.losses import fusion_loss
from training.prepare import prepare
from training.train import main

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent (the real clips)")
ANSWERS = {  # clip -> three annotators' answers: agreement, a split, none/can't tell only, words-only stress
    "1001_DFA_ANG_XX": ["anger", "anger", "fear"],
    "1001_DFA_SAD_XX": ["sad", "neutral", "sad"],
    "1002_DFA_HAP_XX": ["happy", "happy", "happy"],
    "1002_DFA_FEA_XX": ["fear", "disgust", "cant_tell"],
    "1002_DFA_NEU_XX": ["none", "cant_tell", "none"],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("collection")
    clips = root / "clips"
    clips.mkdir()
    for name in ANSWERS:
        src = next(CREMAD.glob(f"{name}.*"))
        shutil.copy(src, clips / src.name)
    store = str(root / "store")
    assert cli.main(["create", "t", "--from", str(clips), "--consent", "CREMA-D, ODbL", "--store", store]) == 0
    for clip, answers in ANSWERS.items():
        for n, answer in enumerate(answers):
            assert cli.main(["label", "t", "--annotator", f"a{n}", "--clip", clip, "--emotion", answer,
                             "--stress", str(2 + n), "--store", store]) == 0
    assert cli.main(["export", "t", str(root / "export"), "--store", store]) == 0
    return root / "export"


def test_prepare_reads_majority_soft_labels_and_stress(exported, tmp_path):
    records = {r["id"]: r for r in prepare("collection", exported, tmp_path / "prepared")}
    folder = {r["id"]: r for r in read_clip_folder(tmp_path / "prepared")}
    assert set(records) == set(folder) == {f"collection/{c}" for c in ANSWERS if c != "1002_DFA_NEU_XX"} | {
        "collection/1002_DFA_NEU_XX"}  # rated for stress, so kept (no emotion, no soft label)
    for clip, answers in ANSWERS.items():
        r = folder[f"collection/{clip}"]
        named = [a for a in answers if a in EMOTIONS]
        expected = [named.count(e) / len(named) if named else 0.0 for e in EMOTIONS]
        assert r["extra"]["soft_label"] == (pytest.approx(expected) if named else [])
        assert r["stress"] == pytest.approx(3.0)
        media = r["video"] or r["audio"]
        assert Path(media).read_bytes() == next(CREMAD.glob(f"{clip}.*")).read_bytes()
    assert folder["collection/1001_DFA_ANG_XX"]["emotion"] == "anger"
    assert folder["collection/1002_DFA_FEA_XX"]["emotion"] is None  # fear vs disgust: no majority
    assert folder["collection/1001_DFA_ANG_XX"]["video"] and folder["collection/1002_DFA_HAP_XX"]["audio"]


def test_fusion_loss_trains_on_the_soft_labels(tiny_model):
    torch.manual_seed(0)
    emb = {m: torch.randn(4, tiny_model.config.embed_dim) for m in ("video", "audio", "text")}
    mask = torch.ones(4, 3, dtype=torch.bool)
    y = torch.tensor([0, 5, 3, -1])
    w = LossWeights(label_smoothing=0.0, unimodal=0.0, consistency=0.0, entropy=0.0)
    none = fusion_loss(tiny_model, emb, mask, y, w, soft=torch.zeros(4, 6)).item()
    assert none == pytest.approx(fusion_loss(tiny_model, emb, mask, y, w).item())  # no soft label: as before
    one_hot = torch.zeros(4, 6)
    one_hot[0, 0] = one_hot[1, 5] = one_hot[2, 3] = 1.0
    assert fusion_loss(tiny_model, emb, mask, y, w, soft=one_hot).item() == pytest.approx(none, rel=1e-5)
    split = one_hot.clone()
    split[0, :2] = 0.5  # row 0: half anger, half disgust
    logits = tiny_model.predict(emb, mask).fused_logits.detach()
    by_hand = -(torch.log_softmax(logits[:3], -1) * split[:3]).sum(1).mean()
    assert fusion_loss(tiny_model, emb, mask, y, w, soft=split).item() == pytest.approx(float(by_hand), rel=1e-5)


@pytest.mark.slow
def test_a_short_finetune_reads_the_exported_collection(exported, corpora, tiny_model_dir, tmp_path):  # noqa: F811
    prepare("collection", exported, tmp_path / "prepared")
    out = tmp_path / "tuned"
    assert main(["--config", "training/configs/finetune.toml", "--set", f'out="{out}"', f'data="{corpora}"',
                 f'init="{tiny_model_dir}"', f'feedback.data="{tmp_path / "prepared"}"', "feedback.steps=3",
                 "feedback.batch=6", "feedback.stress_min_ratings=100"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r.get("stage") == "feedback" and "loss" in r]
    assert losses and all(v == v and v > 0 for v in losses)  # finite, positive
    before, after = (StressModel.from_pretrained(p).state_dict() for p in (tiny_model_dir, out / "checkpoint"))
    assert any((before[k].float() - after[k].float()).abs().max() > 0 for k in before if k in after)
