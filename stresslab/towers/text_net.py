"""The text network: B strings -> (B, D), a BERT-family transformer (masked mean of its last hidden states,
projected). Its config (TextConfig) lives in text.py (torch-free)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from .text import TextConfig


class TextEncoder(nn.Module):
    """list of B strings -> (B, D): masked mean of the transformer's last hidden states, projected."""

    def __init__(self, config: TextConfig, embed_dim: int, tokenizer: PreTrainedTokenizerBase,
                 backbone: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        if backbone is None:
            if config.backbone_config is None:
                raise ValueError("TextConfig.backbone_config is empty: build with TextEncoder.from_backbone(...)")
            cfg = dict(config.backbone_config)
            backbone = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
        self.backbone = backbone
        self.proj = nn.Sequential(nn.Dropout(0.1), nn.Linear(backbone.config.hidden_size, embed_dim), nn.GELU())

    @classmethod
    def from_backbone(cls, config: TextConfig, embed_dim: int, source: str | None = None) -> TextEncoder:
        """Pretrained weights and tokenizer from `source` (a Hub id or local folder; default config.backbone_id)."""
        source = source or config.backbone_id
        tokenizer = AutoTokenizer.from_pretrained(source)
        backbone = AutoModel.from_pretrained(source)
        config.backbone_config = _config_dict(backbone.config)
        return cls(config, embed_dim, tokenizer, backbone)

    @classmethod
    def from_folder(cls, config: TextConfig, embed_dim: int, folder: str | Path) -> TextEncoder:
        """Architecture from config.backbone_config, tokenizer from `folder` (weights come with the checkpoint)."""
        return cls(config, embed_dim, AutoTokenizer.from_pretrained(str(folder)))

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """B strings -> input_ids/attention_mask (B, L), L <= config.max_length."""
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                              return_tensors="pt")

    def forward(self, texts: list[str] | dict[str, torch.Tensor]) -> torch.Tensor:
        """B strings (or their tokenization) -> (B, D)."""
        batch = self.tokenize(texts) if isinstance(texts, list) else texts
        device = next(self.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.backbone(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return self.proj((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0))

    def set_trainable(self, layers: int | None = None) -> None:
        """Freeze the transformer except its top `layers` layers (default config.trainable_layers)."""
        layers = self.config.trainable_layers if layers is None else layers
        for p in self.backbone.parameters():
            p.requires_grad = False
        blocks = getattr(getattr(self.backbone, "encoder", None), "layer", [])
        for block in list(blocks)[len(blocks) - layers:] if layers > 0 else []:
            for p in block.parameters():
                p.requires_grad = True


def _config_dict(config) -> dict:
    """A transformers config as a plain dict that AutoConfig.for_model can rebuild."""
    d = config.to_diff_dict()
    d["model_type"] = config.model_type
    for k in ("_name_or_path", "transformers_version", "architectures", "torch_dtype", "dtype"):
        d.pop(k, None)
    return d
