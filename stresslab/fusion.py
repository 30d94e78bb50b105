"""Attention late fusion over the modalities present.

Each tower gives a (B, D) embedding; missing modalities are masked out. A small scorer looks at each embedding
(plus a learned per-modality bias vector) and gives one score; a softmax over the present modalities turns the
scores into weights that sum to 1, and the fused embedding is their weighted sum. A missing modality gets weight
exactly 0, so every non-empty subset works, and dropping a modality (ablation) is just another mask: the
encoders never run again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .labels import MODALITIES

__all__ = ["MODALITIES", "AttentionFusion", "FusionOutput"]


@dataclass
class FusionOutput:
    """fused: (B, D) embedding; weights: (B, M) attention, 0 for masked modalities, rows sum to 1."""

    fused: torch.Tensor
    weights: torch.Tensor


class AttentionFusion(nn.Module):
    """forward(embeddings (B, M, D), mask (B, M) bool) -> FusionOutput. Needs >= 1 present modality per row."""

    def __init__(self, embed_dim: int, n_modalities: int = len(MODALITIES), hidden: int = 64):
        super().__init__()
        self.modality = nn.Parameter(torch.zeros(n_modalities, embed_dim))
        self.score = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, hidden), nn.Tanh(),
                                   nn.Linear(hidden, 1))

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor) -> FusionOutput:
        if not torch.compiler.is_exporting() and not bool(mask.any(1).all()):  # (ONNX export: no data checks)
            raise ValueError("every row needs at least one present modality")
        scores = self.score(embeddings + self.modality).squeeze(-1)  # (B, M)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        fused = (weights.unsqueeze(-1) * embeddings.masked_fill(~mask.unsqueeze(-1), 0.0)).sum(1)
        return FusionOutput(fused, weights)
