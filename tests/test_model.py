"""Checkpoint format: config.json + model.safetensors + tokenizer/ + README.md; local and Hub paths."""

import json
import shutil

import pytest
import torch

from stresslab.model import CheckpointError, ModelConfig, StressModel, load_model


def _outputs(model: StressModel):
    torch.manual_seed(1)
    emb = {m: torch.randn(2, model.config.embed_dim) for m in ("video", "audio", "text")}
    mask = torch.tensor([[True, True, True], [False, True, False]])
    with torch.no_grad():
        return model.predict(emb, mask)


def test_layout_and_round_trip(tiny_model_dir, tmp_path):
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == ["README.md", "config.json", "model.safetensors", "tokenizer"]
    assert not list(tiny_model_dir.rglob("*.bin")) and not list(tiny_model_dir.rglob("*.pt"))  # never pickle
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["format"] == "stresslab-checkpoint" and config["emotions"][0] == "anger"
    a = StressModel.from_pretrained(tiny_model_dir)
    a.save_pretrained(tmp_path / "copy")
    b = StressModel.from_pretrained(tmp_path / "copy")
    pa, pb = _outputs(a), _outputs(b)
    torch.testing.assert_close(pa.fused_logits, pb.fused_logits)
    torch.testing.assert_close(pa.weights, pb.weights)
    assert pa.stress is None


def test_half_precision_checkpoint_is_smaller_and_close(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "half", half=True)
    tiny_model.save_pretrained(tmp_path / "full")
    half, full = (tmp_path / "half" / "model.safetensors").stat().st_size, (tmp_path / "full" / "model.safetensors")
    assert half < 0.6 * full.stat().st_size
    h = StressModel.from_pretrained(tmp_path / "half")
    torch.testing.assert_close(_outputs(h).fused_logits, _outputs(tiny_model).fused_logits, atol=2e-2, rtol=2e-2)


def test_config_rejects_unknown_keys_and_newer_formats():
    d = ModelConfig().to_dict()
    assert ModelConfig.from_dict(d) == ModelConfig()
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**d, "surprise": 1})
    with pytest.raises(ValueError, match="upgrade"):
        ModelConfig.from_dict({**d, "format_version": 99})


def test_missing_or_broken_checkpoint(tmp_path, tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        StressModel.from_pretrained(tmp_path / "nothing")
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        StressModel.from_pretrained(broken)


def test_hub_id_goes_through_snapshot_download(tiny_model_dir, monkeypatch):
    """The Hub is out of reach here: snapshot_download is patched to serve the local folder; the rest is real."""
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tiny_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = StressModel.from_pretrained("someone/stresslab-tiny")
    assert calls[0][0] == "someone/stresslab-tiny" and "model.safetensors" in calls[0][1]["allow_patterns"]
    assert model.source == "someone/stresslab-tiny"


def test_push_to_hub_uploads_the_checkpoint_folder(tiny_model, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            uploaded["token"] = token

        def create_repo(self, repo_id, private, exist_ok):
            uploaded["repo"] = (repo_id, private)

        def upload_folder(self, repo_id, folder_path, commit_message):
            from pathlib import Path

            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            return "https://hub.example/commit/1"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert tiny_model.push_to_hub("me/model", token="t") == "https://hub.example/commit/1"
    assert uploaded["repo"] == ("me/model", True)
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors", "tokenizer"]


def test_load_model_caches_per_process(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("STRESSLAB_MODEL", str(tiny_model_dir))
    assert load_model() is load_model(str(tiny_model_dir))


def test_optional_pretrained_speech_encoder(tmp_path):
    """AudioConfig.pretrained_id: a (tiny, locally built) wav2vec 2.0 joins the audio tower and round-trips."""
    from conftest import CREMAD, build_tiny_model
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from stresslab import analyze

    speech = tmp_path / "tiny-wav2vec2"
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                 conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)).save_pretrained(speech)
    folder = tmp_path / "with-speech"
    model = StressModel.from_pretrained(build_tiny_model(tmp_path / "base"))
    config = model.config
    config.audio.pretrained_id = str(speech)
    with_speech = StressModel(config, model.text)
    assert with_speech.audio.speech is not None and config.audio.pretrained_config["model_type"] == "wav2vec2"
    with_speech.save_pretrained(folder)
    loaded = StressModel.from_pretrained(folder)  # rebuilt from the stored config: no download, no folder needed
    r = analyze(CREMAD / "1002_DFA_ANG_XX.mp3", model=loaded)
    assert r.modalities["audio"]["present"] and abs(sum(r.probabilities.values()) - 1) < 1e-3


class _Payload:
    """Unpickling this creates the file `canary`: proof that a pickle ran."""

    def __init__(self, canary):
        self.canary = str(canary)

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.canary),))


def hostile_checkpoint(tiny_model_dir, folder, **edits):
    """A copy of the tiny checkpoint whose config.json has `edits` applied ("audio.channels": -5 sets a nested
    key), plus a pickle payload where a careless loader would look for weights."""
    import pickle

    folder = shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    for dotted, value in edits.items():
        *path, key = dotted.split(".")
        target = config
        for part in path:
            target = target[part]
        target[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(folder.parent / "canary")))
    return folder


@pytest.fixture
def no_fetch(monkeypatch):
    """Fail loudly if loading reaches the network, a transformers download or torch.load (pickle)."""
    import huggingface_hub
    import transformers

    calls = []

    def refuse(what):
        def fake(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"{what} was called")
        return fake

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse("snapshot_download"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse("hf_hub_download"))
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse("AutoModel.from_pretrained"))
    monkeypatch.setattr(torch, "load", refuse("torch.load"))
    return calls


def test_a_config_naming_a_backbone_fetches_nothing_and_unpickles_nothing(tiny_model_dir, tmp_path, no_fetch):
    local = hostile_checkpoint(tiny_model_dir, tmp_path / "payload")  # a local folder with a pickle "model"
    for i, target in enumerate(["someone/evil-speech-model", str(local)]):
        folder = hostile_checkpoint(tiny_model_dir, tmp_path / f"c{i}", **{"audio.pretrained_id": target})
        with pytest.raises(CheckpointError, match="pretrained_id .* fetches nothing"):
            StressModel.from_pretrained(folder)
    assert no_fetch == [] and not (tmp_path / "canary").exists()


@pytest.mark.parametrize("edit,message", [
    ({"embed_dim": 10**9}, "embed_dim: expected 1 to 4096, got 1000000000"),
    ({"audio.channels": -5}, "audio.channels: expected 1 to 4096, got -5"),
    ({"text.backbone_config.num_hidden_layers": 10**6}, "num_hidden_layers: expected 0 to 256, got 1000000"),
    ({"video.resnet.depths": [10**6, 1]}, "video.resnet.depths: expected 0 to 256"),
    ({"text.backbone_config.hidden_size": -5}, "hidden_size: expected 0 to 1000000, got -5"),
    ({"emotions": ["anger"] * 1000}, "emotions: expected 2 to 64 distinct names"),
    ({"embed_dim": "16"}, "embed_dim: expected int, got '16'"),
    ({"embed_dim": 32}, "does not describe the weights"),  # plausible, but not these weights: caught on "meta"
    ({"text.backbone_config.intermediate_size": 100_000}, "does not describe the weights"),
])
def test_absurd_sizes_are_refused_before_any_allocation(tiny_model_dir, tmp_path, no_fetch, monkeypatch, edit,
                                                         message):
    import time
    import tracemalloc

    folder = hostile_checkpoint(tiny_model_dir, tmp_path / "bad", **edit)
    tracemalloc.start()
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as e:
        StressModel.from_pretrained(folder)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - t < 10 and peak < 200 << 20  # the tiny model's own load stays far below this
    assert len(str(e.value).splitlines()) == 1 and no_fetch == []


def test_every_broken_checkpoint_is_one_error_line_from_the_cli(tiny_model_dir, tmp_path):
    from test_cli import FLV, run

    cases = {"absurd": {"embed_dim": 10**9}, "backbone": {"audio.pretrained_id": "someone/evil"}}
    folders = [hostile_checkpoint(tiny_model_dir, tmp_path / name, **edit) for name, edit in cases.items()]
    garbage = shutil.copytree(tiny_model_dir, tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 100)
    truncated = shutil.copytree(tiny_model_dir, tmp_path / "truncated")
    (truncated / "config.json").write_bytes(b'{"embed_dim": 16, "vid')
    for folder in [*folders, garbage, truncated]:
        p = run("analyze", FLV, "--model", str(folder))
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert p.stderr.startswith(f"error: cannot load the model {folder}") and "Traceback" not in p.stderr
    assert not (tmp_path / "canary").exists()
