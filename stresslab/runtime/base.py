"""The one interface analysis needs from a model, in numpy: embed each modality, run the heads and the fusion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Scores:
    """Outputs for B rows: fused_logits (B, K); weights (B, 3) attention in MODALITIES order (0 where masked);
    modality_logits {modality: (B, K)} for the modalities given; stress (B,) in [0, 1] or None (no stress head)."""

    fused_logits: np.ndarray
    weights: np.ndarray
    modality_logits: dict[str, np.ndarray]
    stress: np.ndarray | None


class Backend(Protocol):
    """A model that analysis can run. config: its ModelConfig; source: folder or Hub id;
    info: {"runtime": "torch" | "onnx", "precision": ...}."""

    config: object
    source: str | None
    info: dict
    uses_waveform: bool  # the audio tower also reads the raw waveform (a pretrained speech encoder)

    def embed_frames(self, crops: np.ndarray) -> np.ndarray:
        """(N, C, S, S) float32 face crops in [-1, 1] -> (N, D) per-frame embeddings."""

    def embed_audio(self, feats: np.ndarray, lengths: np.ndarray, waves: np.ndarray | None = None) -> np.ndarray:
        """(B, T, F) zero-padded frame features, (B,) lengths in frames, (B, N) waveforms or None -> (B, D)."""

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """B strings -> (B, D)."""

    def head(self, modality: str, emb: np.ndarray) -> np.ndarray:
        """(B, D) embeddings of one modality -> (B, K) that modality's own logits."""

    def predict(self, emb: dict[str, np.ndarray], mask: np.ndarray) -> Scores:
        """{modality: (B, D)} and (B, 3) bool mask (>= 1 true per row) -> Scores."""
