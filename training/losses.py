"""The training losses: a tower's own classification loss, and the fusion loss of the later stages.

fusion_loss = cross-entropy of the fused head (rows with a label; against the annotators' soft label distribution
              where a row has one: an exported collection's several labels per clip)
            + unimodal weight x cross-entropy of each present modality's own head
            + consistency weight x KL(fused || each present modality's distribution)
            - entropy weight x the attention weights' entropy (so fusion does not collapse onto one modality early)
            + stress weight x MSE of the learned stress head on rated rows (when the model has one)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stresslab.labels import EMOTIONS, MODALITIES
from stresslab.model import StressModel
from training.config import LossWeights
from training.loop import device_of


def class_weights(y: np.ndarray) -> torch.Tensor:
    """(6,) weights inversely proportional to each class's count in y (0 for absent classes), mean 1 over present."""
    counts = np.bincount(y, minlength=len(EMOTIONS)).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(EMOTIONS), 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def head_loss(logits: torch.Tensor, y: np.ndarray, weights: torch.Tensor, w: LossWeights) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy of a tower's head: logits (B, 6), y (B,) emotion ids."""
    dev = logits.device
    return F.cross_entropy(logits, torch.from_numpy(y).to(dev), weight=weights.to(dev),
                           label_smoothing=w.label_smoothing)


def fusion_loss(model: StressModel, emb: dict[str, torch.Tensor], mask: torch.Tensor, y: torch.Tensor,
                w: LossWeights, stress: torch.Tensor | None = None, soft: torch.Tensor | None = None) -> torch.Tensor:
    """emb: {modality: (B, D)}, mask: (B, 3) bool, y: (B,) emotion ids (-1: no label), stress: (B,) in [0, 1]
    (-1: not rated), soft: (B, 6) label distributions (a row of zeros: none; such a row's target replaces y in
    the fused head's cross-entropy) -> the scalar loss of the module docstring."""
    dev = device_of(model)
    emb, mask, y = {m: e.to(dev) for m, e in emb.items()}, mask.to(dev), y.to(dev)
    stress = stress.to(dev) if stress is not None else None
    pred = model.predict(emb, mask)
    soft = soft.to(dev) if soft is not None else torch.zeros(len(y), pred.fused_logits.shape[1], device=dev)
    has_soft = soft.sum(1) > 0
    labelled = y >= 0
    hard = labelled & ~has_soft
    loss = pred.fused_logits.new_zeros(())
    if hard.any():
        loss = F.cross_entropy(pred.fused_logits[hard], y[hard], label_smoothing=w.label_smoothing) * (
            hard.sum() / (hard | has_soft).sum())
    if has_soft.any():  # probability targets: the annotators' distribution
        loss = loss + F.cross_entropy(pred.fused_logits[has_soft], soft[has_soft]) * (
            has_soft.sum() / (hard | has_soft).sum())
    log_fused = F.log_softmax(pred.fused_logits, -1)
    for j, m in enumerate(MODALITIES):
        rows = mask[:, j]
        if not rows.any():
            continue
        logits = pred.modality_logits[m][rows]
        if w.unimodal and (rows & labelled).any():
            loss = loss + w.unimodal * F.cross_entropy(pred.modality_logits[m][rows & labelled], y[rows & labelled])
        loss = loss + w.consistency * F.kl_div(log_fused[rows], F.log_softmax(logits, -1), log_target=True,
                                               reduction="batchmean")
    weights = pred.weights.clamp_min(1e-8)
    loss = loss - w.entropy * (-(weights * weights.log()).sum(1)).mean()
    if stress is not None and pred.stress is not None and (stress >= 0).any():
        rated = stress >= 0
        loss = loss + w.stress * F.mse_loss(pred.stress[rated], stress[rated])
    return loss
