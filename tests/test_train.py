"""The fit loop on a toy problem (early stopping restores the best weights), the config, the stress head grown
before accelerate places the model, and a short real training run on small subsets of the real corpora: every
stage runs, the loss goes down, the checkpoint loads and evaluates through the product's path, and a rerun resumes
instead of starting again. Tests that read ../shared/data skip, with the reason, where it is absent."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from conftest import CREMAD, EMODB, FER, GOEMOTIONS, SHARED

from stresslab import StressModel, analyze
from training.clip_folder import clip_record
from training.config import Optimisation, load_config, model_config
from training.evaluate import evaluate, select_records
from training.loop import Stage, device_of, fit
from training.prepare import prepare
from training.train import main, starting_model

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"needs the shared corpora in {SHARED}")


def test_fit_stops_early_and_restores_the_best_weights():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    first_layer = model[0].weight.detach().clone()
    scores = iter([0.2, 0.6, 0.5, 0.4, 0.9, 0.9])  # best at the 2nd evaluation; patience 2 stops after the 4th
    seen = []

    def score() -> float:
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scores)

    epochs, per_epoch = 6, 8
    batches = ((x[i: i + 8], y[i: i + 8]) for _ in range(epochs) for i in range(0, 64, 8))
    stage = Stage("toy", list(model[2].parameters()), batches, lambda b: F.cross_entropy(model(b[0]), b[1]),
                  steps=epochs * per_epoch, lr=0.05, eval_every=per_epoch, evaluate=score, metric="acc",
                  patience=2, per_epoch=per_epoch)
    lines = []
    fitted = fit(model, stage, Accelerator(cpu=True), Optimisation(), lambda name, **v: lines.append((name, v)))
    assert (fitted.steps, fitted.best, fitted.best_at) == (4 * per_epoch, 0.6, 2) and len(seen) == 4
    state = model.state_dict()
    assert all(torch.equal(state[k], seen[1][k]) for k in state)  # the weights of the best evaluation are back
    assert not torch.equal(seen[1]["2.weight"], seen[3]["2.weight"])  # though training had moved them on
    assert torch.equal(model[0].weight, first_layer) and model[0].weight.requires_grad  # frozen for the stage only
    assert lines[0] == ("toy", {"step": 1, "loss": lines[0][1]["loss"]})
    assert [(v["epoch"], v["acc"]) for _, v in lines[1:]] == [(1, 0.2), (2, 0.6), (3, 0.5), (4, 0.4)]


def test_a_stage_without_evaluation_runs_its_budget():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = model.weight.detach().clone()
    batches = ((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])) for _ in range(5))
    stage = Stage("plain", list(model.parameters()), batches, lambda b: F.cross_entropy(model(b[0]), b[1]), steps=5,
                  lr=0.1, eval_every=2)
    lines = []
    fitted = fit(model, stage, Accelerator(cpu=True), Optimisation(), lambda name, **v: lines.append(v))
    assert (fitted.steps, fitted.best, fitted.best_at) == (5, None, None)
    assert [v["step"] for v in lines] == [1, 2, 4, 5] and not torch.equal(model.weight, before)


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
    cfg_file.write_text('stages = ["audio"]\n[video]\nepochs = 3\n[model.video.resnet]\ndepths = [2, 2, 2, 2]\n')
    cfg = load_config(str(cfg_file), ["audio.lr=0.01", "out=runs/x", "model.embed_dim=64", "optim.patience=5"])
    assert cfg.video.epochs == 3 and cfg.video.batch == 128 and cfg.stages == ["audio"] and cfg.audio.lr == 0.01
    assert cfg.out == "runs/x" and cfg.optim.patience == 5 and cfg.optim.clip_grad == 1.0
    arch = model_config(cfg)  # the recipe's architecture, the file's and the command line's changes merged in
    assert (arch.embed_dim, arch.video.image_size, arch.text.max_length, arch.name) == (64, 64, 48, "stresslab-default")
    assert arch.video.resnet["depths"] == [2, 2, 2, 2] and arch.video.resnet["hidden_sizes"] == [32, 64, 128, 256]
    with pytest.raises(SystemExit, match="unknown settings"):
        load_config(None, ["nope=1"])
    with pytest.raises(SystemExit, match="renamed: video_epochs -> video.epochs"):
        load_config(None, ["video_epochs=1"])
    with pytest.raises(SystemExit, match=r"unknown settings \['audio.nope'\]"):
        load_config(None, ["audio.nope=1"])
    with pytest.raises(SystemExit, match=r"\[model\] settings: VideoConfig: unknown keys \['nope'\]"):
        load_config(None, ["model.video.nope=1"])
    with pytest.raises(SystemExit, match="video is a table"):
        load_config(None, ["video=3"])


def test_stress_head_grows_before_accelerate_places_the_model(tiny_model_dir, tmp_path, monkeypatch):
    """Enough rated corrections give the model a learned stress head before accelerate's prepare, so the head is
    placed with the rest of the model (made after it, it stayed on the CPU while the model went to the GPU)."""
    folder = tmp_path / "fb"
    folder.mkdir()
    records = [clip_record(id=f"feedback/{i}", text="fine, thanks", emotion="happy", stress=float(1 + i % 5),
                           corpus="feedback") for i in range(3)] + [clip_record(id="feedback/x", emotion="sad")]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    settings = [f'init="{tiny_model_dir}"', f'feedback.data="{folder}"', f'out="{tmp_path / "run"}"']
    lines = []
    model = starting_model(load_config("training/configs/finetune.toml", [*settings, "feedback.stress_min_ratings=4"]),
                           [], lambda name, **v: lines.append(v))
    assert model.stress_head is None and not model.config.stress_head and lines == []  # 3 ratings < 4
    cfg = load_config("training/configs/finetune.toml", [*settings, "feedback.stress_min_ratings=3"])
    model = starting_model(cfg, [], lambda name, **v: lines.append(v))
    assert model.config.stress_head and lines == [{"added_stress_head": True, "rated": 3}]
    acc = Accelerator(cpu=not torch.cuda.is_available())
    if not torch.cuda.is_available():  # no GPU here: the meta device stands in for it, as accelerate would move
        monkeypatch.setattr(acc, "prepare", lambda m: m.to("meta"))  # every parameter the model has by then
    placed = acc.prepare(model)
    assert placed.stress_head.weight.device == device_of(placed) != torch.device("cpu")
    assert {p.device for p in placed.parameters()} == {device_of(placed)}


@needs_shared
def test_short_real_run_lowers_the_loss_and_resumes(corpora, tmp_path):
    out = tmp_path / "run"
    args = ["--config", "training/configs/smoke.toml", "--set", f'out="{out}"', f'data="{corpora}"',
            "audio.epochs=8", "video.limit=0"]
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


@needs_shared
def test_audio_with_a_given_epoch_count_skips_the_selection_pass(corpora, tmp_path):
    """audio.select=false: one pass of exactly audio.epochs on train + EmoDB val speakers, no validation scoring."""
    out = tmp_path / "run"
    assert main(["--config", "training/configs/smoke.toml", "--set", f'out="{out}"', f'data="{corpora}"',
                 'stages=["audio"]', "audio.epochs=2", "audio.select=false"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"audio"' in line]
    assert [r["epoch"] for r in log if "epoch" in r] == [1, 2] and not any("val_uar" in r for r in log)
    clips = [r["train_clips"] for r in log if "train_clips" in r]
    final = next(r for r in log if "refit_epochs" in r)
    assert len(clips) == 1 and final["refit_epochs"] == 2 and final["selected"] is False
    emodb_val = sum(1 for line in (corpora / "emodb" / "metadata.jsonl").read_text().splitlines()
                    if json.loads(line)["speaker"] in ("09", "10"))
    assert emodb_val > 0 and final["refit_clips"] == clips[0]  # the EmoDB validation speakers are in the one pass
    selecting = tmp_path / "selecting"
    assert main(["--config", "training/configs/smoke.toml", "--set", f'out="{selecting}"', f'data="{corpora}"',
                 'stages=["audio"]', "audio.epochs=2", "audio.refit=false"]) == 0
    sel = [json.loads(line) for line in (selecting / "log.jsonl").read_text().splitlines() if '"audio"' in line]
    assert [r["train_clips"] for r in sel if "train_clips" in r] == [clips[0] - emodb_val]


@needs_shared
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
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    store.add(emotion="sad", media_path=silent, consent_keep_media=True)  # no voice, no face, no words
    store.add(emotion=None, transcript="I can't tell.")  # neither an emotion nor a rating: prepare leaves it out
    prepare("feedback", tmp_path / "store", tmp_path / "fb")
    tuned = tmp_path / "tuned"
    assert main(["--config", "training/configs/finetune.toml", "--set", f'out="{tuned}"', f'data="{corpora}"',
                 f'init="{base / "checkpoint"}"', f'feedback.data="{tmp_path / "fb"}"', "feedback.steps=6",
                 "feedback.batch=8", "feedback.stress_min_ratings=10"]) == 0
    before = StressModel.from_pretrained(base / "checkpoint").state_dict()
    after = StressModel.from_pretrained(tuned / "checkpoint").state_dict()
    assert any((before[k].float() - after[k].float()).abs().max() > 0 for k in before if k in after)
    log = [json.loads(line) for line in (tuned / "log.jsonl").read_text().splitlines()]
    assert {"stage": "feedback", "corrections": 12,
            "skipped": "skipped 1 unusable correction (1 no usable modality)"}.items() \
        <= next(r for r in log if "corrections" in r).items()
    tuned_model = StressModel.from_pretrained(tuned / "checkpoint")
    assert tuned_model.config.stress_head  # 12 rated corrections >= 10: a learned stress head replaces the mapping
    r = analyze(CREMAD / "1002_DFA_SAD_XX.mp3", model=tuned_model)
    assert r.stress["method"] == "learned stress head" and 0 <= r.stress["score"] <= 1
    report = evaluate(tuned_model, select_records(str(tmp_path / "fb"), None, None), "fused")
    assert report["n"] == 12
