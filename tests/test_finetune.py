"""`stresslab finetune` (issue 17) on a correction store made through the CLI from real clips, run from a folder
with no data/corpora: unusable corrections skipped and counted in one line, the checkpoint loads and analyses,
too few corrections exit 2 with the count needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CREMAD, SHARED, build_tiny_model
from PIL import Image

RAVDESS = SHARED / "ravdess-speech"
pytestmark = pytest.mark.timeout(1800)  # a real fine-tuning run, on a shared 2-core machine
needs_data = pytest.mark.skipif(not RAVDESS.is_dir() or not CREMAD.is_dir(),
                                reason="needs the real clips of ../shared/data (ravdess-speech, cremad-sample)")
EMOTION = {"01": "neutral", "03": "happy", "04": "sad", "05": "anger", "06": "fear", "07": "disgust"}


def stresslab(*args, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRESSLAB_THREADS": "2", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "stresslab.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)


def add(store: Path, clip: Path | None, emotion: str) -> None:
    """`stresslab corrections add` (its own entry point, in this process: one interpreter start per record is
    minutes on a loaded machine)."""
    from stresslab.corrections.cli import main

    assert main(["add", "--store", str(store), "--emotion", emotion, "--keep-media",
                 *(["--clip", str(clip)] if clip else [])]) == 0


def ravdess_clips(n: int) -> list[tuple[Path, str]]:
    """n RAVDESS speech clips with a mapped emotion, spread over actors and emotions."""
    files = sorted(p for p in RAVDESS.rglob("*.flac") if p.stem.split("-")[2] in EMOTION)
    picked = files[:: max(1, len(files) // n)][:n]
    return [(p, EMOTION[p.stem.split("-")[2]]) for p in picked]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with no data/corpora (the command runs from here), holding the tiny model and the store."""
    root = tmp_path_factory.mktemp("clean")
    tiny = build_tiny_model(root / "models" / "tiny")
    corpora = tmp_path_factory.mktemp("elsewhere")  # the replay set is made where the corpora are, once
    from training.prepare import prepare

    prepare("cremad", CREMAD, corpora / "cremad", link=True)
    from training.replay import main

    assert main(["--model", str(tiny), "--data", str(corpora)]) == 0
    from safetensors import safe_open

    with safe_open(str(tiny / "replay.safetensors"), "pt") as f:
        assert {k: f.get_slice(k).get_shape()[0] for k in f.keys()} == {
            "video.emb": 6, "video.y": 6, "audio.emb": 6, "audio.y": 6, "audio.x": 6, "audio.len": 6}  # actor 1001
    return root


@needs_data
def test_the_replayed_voice_features_are_what_the_tower_embedded(workdir: Path):
    """The replay set's voice inputs, through the initial model's tower, give its stored embeddings back: rehearsal
    trains the tower on the very features (and labels) the replay set describes."""
    import torch

    from stresslab.model import StressModel
    from training.finetune import _replay_predict, load_replay

    model = StressModel.from_pretrained(workdir / "models" / "tiny").eval()
    r = load_replay(workdir / "models" / "tiny" / "replay.safetensors")["audio"]
    assert r["x"].shape[:2] == (6, int(r["len"].max())) and r["x"].shape[2] == model.config.audio.n_features
    with torch.no_grad():
        emb = model.audio(r["x"], r["len"])
        fused, own = _replay_predict(model, "audio", r, torch.arange(6))
    assert torch.allclose(emb, r["emb"], atol=2e-2), float((emb - r["emb"]).abs().max())
    assert torch.allclose(own, model.heads["audio"](r["emb"]), atol=5e-2)


@pytest.fixture(scope="module")
def store(workdir: Path) -> Path:
    store = workdir / "store"
    for path, emotion in ravdess_clips(22):
        add(store, path, emotion)
    for name, emotion in (("1001_DFA_HAP_XX.flv", "happy"), ("1001_DFA_SAD_XX.flv", "sad")):
        add(store, CREMAD / name, emotion)  # video + audio
    silent = workdir / "silence.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    add(store, silent, "sad")  # no voice, no face, no words
    faceless = workdir / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(faceless)
    add(store, faceless, "happy")  # an image without a face
    add(store, ravdess_clips(23)[-1][0], "none")  # "none of these"
    add(store, CREMAD / "1002_DFA_ANG_XX.mp3", "anger")
    broken = sorted((store / "media").rglob("clip.mp3"))
    assert len(broken) == 1
    broken[0].write_bytes(b"not an mp3 at all" * 10)  # a kept file that no longer decodes
    return store


@pytest.fixture(scope="module")
def tuned(workdir: Path, store: Path) -> tuple[Path, subprocess.CompletedProcess]:
    assert not (workdir / "data").exists()
    out = workdir / "tuned"
    p = stresslab("finetune", store, "--out", out, "--init", workdir / "models" / "tiny", "--steps", 8, "--lr", 0.001,
                  "--batch", 4, cwd=workdir)
    return out, p


@needs_data
def test_finetune_on_a_clean_checkout(workdir: Path, tuned):
    out, p = tuned
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [line for line in p.stderr.splitlines() if line.startswith("skipped")]
    assert lines == ["skipped 4 unusable corrections (1 no emotion (none), 1 unreadable file, "
                     "2 no usable modality)"], p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    record = json.loads((out / "finetune.json").read_text())
    assert record["usable"] == 24 and record["train"] + record["held_out"]["n"] == 24
    assert sum(record["per_emotion"].values()) == record["train"]
    assert record["held_out"]["before"]["fused"]["n"] == record["held_out"]["n"]
    assert record["original"] == {}  # no original evaluation set on disk
    assert record["replay"] and (out / "replay.safetensors").is_file()  # MODEL's replay set, carried along
    card = (out / "README.md").read_text()
    assert "Skipped as unusable: 1 no emotion (none), 1 unreadable file, 2 no usable modality" in card
    assert "fine-tuned on corrections" in card and "UAR before" in card
    assert "voice features fed through the voice tower" in card
    config = json.loads((out / "config.json").read_text())
    assert config["audio"]["speech_detector"] == "relative"

    clip = ravdess_clips(23)[-1][0]
    a = stresslab("analyze", clip, "--json", "--no-ablations", cwd=workdir, env_extra={"STRESSLAB_MODEL": str(out)})
    assert a.returncode == 0, a.stderr[-2000:]
    doc = json.loads(a.stdout)
    assert doc["modalities"]["audio"]["present"] and doc["emotion"] in EMOTION.values()
    from stresslab.model import StressModel

    tuned, initial = StressModel.from_pretrained(out), StressModel.from_pretrained(workdir / "models" / "tiny")
    moved = max(float((a.float() - b.float()).abs().max()) for a, b in
                zip(tuned.state_dict().values(), initial.state_dict().values(), strict=True)
                if a.is_floating_point())
    assert moved > 1e-3, "fine-tuning changed no weight"


@needs_data
def test_the_result_pushes_to_the_hub_like_any_checkpoint(tuned, monkeypatch):
    import huggingface_hub

    from stresslab.model import StressModel

    out, p = tuned
    assert p.returncode == 0, p.stderr[-3000:]
    uploaded = {}

    class FakeApi:  # the Hub cannot be reached from here
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private, exist_ok):
            uploaded["repo"] = (repo_id, private)

        def upload_folder(self, repo_id, folder_path, commit_message):
            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            uploaded["card"] = (Path(folder_path) / "README.md").read_text()
            uploaded["config"] = json.loads((Path(folder_path) / "config.json").read_text())
            return "https://hub.example/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    card = (out / "README.md").read_text()
    StressModel.from_pretrained(out).push_to_hub("me/tuned", token="t", model_card=card)
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors", "replay.safetensors", "tokenizer"]
    assert uploaded["card"] == card and uploaded["config"]["audio"]["speech_detector"] == "relative"


@needs_data
def test_too_few_corrections_exit_2_with_the_count_needed(workdir: Path):
    store = workdir / "small"
    for path, emotion in ravdess_clips(3):
        add(store, path, emotion)
    add(store, None, "none")
    p = stresslab("finetune", store, "--out", workdir / "never", "--init", workdir / "models" / "tiny", cwd=workdir)
    assert p.returncode == 2
    assert "error: 3 usable corrections" in p.stderr and "needs at least 20" in p.stderr, p.stderr
    assert "skipped 1 unusable correction (1 no emotion (none))" in p.stderr
    assert "Traceback" not in p.stderr and not (workdir / "never").exists()


@needs_data
def test_not_a_source_is_one_line(workdir: Path):
    p = stresslab("finetune", workdir / "models", "--out", workdir / "x", "--init", workdir / "models" / "tiny",
                  cwd=workdir)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "correction store" in p.stderr


def test_the_cli_finds_finetune_as_a_plugin_and_says_what_to_install_without_it():
    """stresslab.cli never imports training: `finetune` comes from the entry point group stresslab.commands."""
    from stresslab.cli import build_parser

    assert build_parser().parse_args(["finetune", "src", "--out", "o"]).func.__module__ == "training.finetune"
    code = ("import sys; sys.modules['training'] = None\n"
            "from stresslab.cli import main\n"
            "sys.exit(main(['finetune']))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "pip install" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
