"""The ONNX runtime: export a tiny model through the real exporter, reload it, and compare with torch on real clips;
int8; partial and corrupt folders; the CLI. The torch-free install is tested in test_lean_install.py."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import CREMAD, run_python

import stresslab
from stresslab.runtime import is_onnx_folder, load_backend
from stresslab.runtime.torch_backend import TorchBackend

pytest.importorskip("onnxruntime")
CLIPS = [CREMAD / "1001_DFA_ANG_XX.flv", CREMAD / "1001_DFA_SAD_XX.flv", CREMAD / "1002_DFA_HAP_XX.mp3"]


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    from stresslab.runtime.export import export

    root = tmp_path_factory.mktemp("onnx")
    return export(tiny_model, root / "fp32"), export(tiny_model, root / "int8", int8=True)


def _analyses(model, clips):
    analyzer = stresslab.Analyzer(model)
    return [analyzer.analyze(stresslab.load_clip(c, text="Don't forget a jacket")).to_dict() for c in clips]


@pytest.mark.skipif(not CREMAD.is_dir(), reason="needs ../shared/data (the real CREMA-D clips)")
def test_onnx_float32_matches_torch_on_real_clips(tiny_model, exported):
    fp32, _ = exported
    assert is_onnx_folder(fp32) and not (fp32 / "model.safetensors").exists()
    onnx = stresslab.load_model(fp32)
    assert type(onnx).__name__ == "OnnxBackend"
    for t, o in zip(_analyses(tiny_model, CLIPS), _analyses(onnx, CLIPS), strict=True):
        assert o["model"]["runtime"] == "onnx" and o["model"]["precision"] == "float32"
        assert t["model"]["runtime"] == "torch"
        assert np.allclose(list(t["probabilities"].values()), list(o["probabilities"].values()), atol=1e-4)
        for m in ("video", "audio", "text"):
            assert t["modalities"][m]["weight"] == pytest.approx(o["modalities"][m]["weight"], abs=1e-4)
        assert t["ablations"].keys() == o["ablations"].keys() and t["used"] == o["used"]
        assert [f["emotion"] for f in t["faces"]] == [f["emotion"] for f in o["faces"]]


def test_the_plain_face_cnn_exports_and_reloads_with_the_same_numbers(tmp_path):
    from conftest import build_tiny_model

    from stresslab.runtime.export import export
    from stresslab.towers.video import VideoConfig

    folder = build_tiny_model(tmp_path / "plain", video=VideoConfig(arch="plain", widths=[8, 16], mirror_average=True))
    torch_backend = load_backend(folder)
    assert type(torch_backend.model.video.cnn).__name__ == "PlainCNN"
    onnx = load_backend(export(torch_backend.model, tmp_path / "onnx"))
    crops = np.random.default_rng(0).uniform(-1, 1, (3, 1, 48, 48)).astype(np.float32)
    assert np.allclose(torch_backend.embed_frames(crops), onnx.embed_frames(crops), atol=1e-4)


def test_backends_agree_tower_by_tower(tiny_model, exported):
    fp32, int8 = exported
    torch_b, onnx_b, int8_b = TorchBackend(tiny_model), load_backend(fp32), load_backend(int8)
    rng = np.random.default_rng(0)
    cfg = tiny_model.config
    crops = rng.uniform(-1, 1, (3, cfg.video.channels, cfg.video.image_size, cfg.video.image_size)).astype(np.float32)
    feats = rng.normal(size=(2, 120, cfg.audio.n_features)).astype(np.float32)
    lengths = np.array([120, 70])
    texts = ["I can't believe you did that", "fine"]
    emb = {m: rng.normal(size=(4, cfg.embed_dim)).astype(np.float32) for m in ("video", "audio", "text")}
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 0], [0, 0, 1]], bool)
    for other, quantised in ((onnx_b, False), (int8_b, True)):
        assert np.allclose(torch_b.embed_frames(crops), other.embed_frames(crops), atol=1e-4)  # convs stay float
        assert np.allclose(torch_b.embed_audio(feats, lengths), other.embed_audio(feats, lengths), atol=1e-4)
        a, b = torch_b.embed_text(texts), other.embed_text(texts)
        if quantised:  # int8 weights: close in direction, not to 1e-4
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            assert (cos > 0.97).all() and not np.allclose(a, b, atol=1e-6)
        else:
            assert np.allclose(a, b, atol=1e-4)
        a, b = torch_b.predict(emb, mask), other.predict(emb, mask)
        assert np.allclose(a.fused_logits, b.fused_logits, atol=1e-4) and np.allclose(a.weights, b.weights, atol=1e-5)
        assert (b.weights[~mask] == 0).all()
    manifest = json.loads((int8 / "onnx" / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and "MatMul" in manifest["int8_ops"]
    assert (int8 / "onnx" / "text.onnx").stat().st_size < (fp32 / "onnx" / "text.onnx").stat().st_size
    assert "int8" in (int8 / "README.md").read_text()


def test_partial_or_corrupt_folder_says_what_is_wrong(exported, tmp_path):
    fp32, _ = exported
    partial = shutil.copytree(fp32, tmp_path / "partial")
    (partial / "onnx" / "text.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing onnx/text\.onnx"):
        load_backend(partial)
    corrupt = shutil.copytree(fp32, tmp_path / "corrupt")
    (corrupt / "onnx" / "audio.onnx").write_bytes(b"\x08\x07not a graph")
    with pytest.raises(ValueError, match=r"audio\.onnx"):
        load_backend(corrupt)


def test_cli_exports_and_analyses_with_either_runtime(tiny_model_dir, tmp_path):
    out = tmp_path / "exported"
    cli = [sys.executable, "-m", "stresslab.cli"]
    p = subprocess.run([*cli, "export", str(tiny_model_dir), str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert is_onnx_folder(out)
    p = subprocess.run([*cli, "analyze", "--text", "I hate waiting", "--json", "--model", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["model"]["runtime"] == "onnx"
    p = subprocess.run([*cli, "export", str(tmp_path / "nowhere"), str(tmp_path / "x")], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.startswith("error:") and len(p.stderr.strip().splitlines()) == 1


def test_onnx_analysis_of_a_clip_imports_none_of_the_heavy_modules(exported):
    """`stresslab analyze CLIP` on an exported folder (#15): torch, transformers, librosa, scipy and numba cost a
    fresh process seconds (tens of seconds when numba's cache is cold) and the ONNX path needs none of them."""
    fp32, _ = exported
    code = ("import contextlib, io, json, sys\n"
            "from stresslab.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    status = main(['analyze', {str(CLIPS[0])!r}, '--text', 'fine', '--json', '--model', {str(fp32)!r}])\n"
            "doc = json.loads(out.getvalue())\n"
            "heavy = ('torch', 'transformers', 'librosa', 'scipy', 'numba', 'sklearn', 'pandas', 'gradio')\n"
            "print(status, doc['model']['runtime'], doc['used'], sorted(m for m in heavy if m in sys.modules))\n")
    assert run_python(code).strip().splitlines()[-1] == "0 onnx ['video', 'audio', 'text'] []"


def test_torch_gets_the_configured_threads_when_a_torch_model_loads(tiny_model_dir):
    """configure_threads no longer imports torch (the ONNX path never needs it); a torch model still runs with
    the configured count, set when stresslab loads one."""
    code = ("import sys\n"
            "from stresslab.runtime import configure_threads, load_backend\n"
            "configure_threads(3)\n"  # not a core count torch would pick by itself on usual machines
            "assert 'torch' not in sys.modules\n"
            f"backend = load_backend({str(tiny_model_dir)!r})\n"
            "import torch\n"
            "print(type(backend).__name__, torch.get_num_threads())\n")
    assert run_python(code).strip().splitlines()[-1] == "TorchBackend 3"


def test_onnx_words_from_many_threads_at_once(exported):
    """The app analyses in several threads (a visitor's clip while the teaching panel runs the examples)."""
    from concurrent.futures import ThreadPoolExecutor

    backend = load_backend(exported[1])
    with ThreadPoolExecutor(8) as pool:
        shapes = list(pool.map(lambda i: backend.embed_text([f"words {i} " * (i % 7 + 1), "hi"]).shape, range(200)))
    assert shapes == [(2, backend.config.embed_dim)] * 200


@pytest.mark.skipif(not CREMAD.is_dir(), reason="needs ../shared/data (the real CREMA-D clips)")
def test_evaluate_scores_an_exported_folder_like_its_checkpoint(tiny_model_dir, exported, tmp_path, capsys):
    """training.evaluate (and eval_sets) measure accuracy through the runtime users run: an exported folder is
    scored on onnxruntime, with the checkpoint's figures (same clips, same answers within float error)."""
    from training.evaluate import main
    from training.prepare import prepare

    prepare("cremad", CREMAD, tmp_path / "cremad", link=True)
    docs = []
    for folder in (tiny_model_dir, exported[0]):
        assert main(["--model", str(folder), "--data", str(tmp_path / "cremad"), "--modality", "fused"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    torch_doc, onnx_doc = docs
    assert onnx_doc["n"] == torch_doc["n"] == 12 and onnx_doc["model"] == str(exported[0])
    assert onnx_doc["accuracy"] == torch_doc["accuracy"] and onnx_doc["ablation"] == torch_doc["ablation"]
    assert abs(onnx_doc["ece"] - torch_doc["ece"]) < 1e-3
