"""Honest fused confidence: the fused answer is never more confident than the modalities behind it support.

The fused head sees the towers' embeddings, not their calibrated answers, and on its own it can be surer than any
of them (a voice alone at 53% became a fused 76%). The evidence of the present modalities is the normalised
product of their calibrated distributions (independent evidence, uniform prior over the emotions: with one
modality it is that modality's own answer; agreeing modalities make it surer, disagreeing ones less sure). Where
the fused distribution's top probability exceeds the evidence's, the fused distribution is flattened by a
temperature until the two are equal: which emotion it names and the order of the others never change.

Used by the analysis (every fused answer: the clip, each window, each ablation) and by training's calibration,
so the "not sure" threshold is chosen on the bounded confidences the user sees.
"""

from __future__ import annotations

import numpy as np


def evidence(own: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """own: (N, M, K) each modality's calibrated probabilities, mask: (N, M) bool, the modalities in the fusion ->
    (N, K) their normalised product (a row with no modality: uniform)."""
    own, mask = np.asarray(own, np.float64), np.asarray(mask, bool)
    if own.ndim != 3 or mask.shape != own.shape[:2]:
        raise ValueError(f"expected own (N, M, K) and mask (N, M), got {own.shape} and {mask.shape}")
    log_p = np.where(mask[..., None], np.log(np.clip(own, 1e-12, 1.0)), 0.0).sum(1)
    p = np.exp(log_p - log_p.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def flatten_to(probs: np.ndarray, limit: np.ndarray, iterations: int = 50) -> np.ndarray:
    """(N, K) probabilities, (N,) confidence limits -> (N, K): each row whose top probability exceeds its limit is
    raised to the power 1/T with the T >= 1 (found by bisection) that brings its top probability to the limit."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    limit = np.maximum(np.asarray(limit, np.float64), 1.0 / p.shape[1])
    over = p.max(1) > limit
    if not over.any():
        return np.asarray(probs, np.float64)
    log_p = np.log(p[over])
    lo, hi = np.zeros(over.sum()), np.ones(over.sum())  # in 1/T: 1 is the row as it is, 0 is uniform

    def tempered(inv_t: np.ndarray) -> np.ndarray:
        z = log_p * inv_t[:, None]
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    for _ in range(iterations):
        mid = (lo + hi) / 2
        too_sure = tempered(mid).max(1) > limit[over]
        hi, lo = np.where(too_sure, mid, hi), np.where(too_sure, lo, mid)
    out = np.asarray(probs, np.float64).copy()
    out[over] = tempered(lo)
    return out


def bound_by_evidence(fused: np.ndarray, own: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """fused: (N, K) calibrated fused probabilities; own: (N, M, K) the modalities' calibrated probabilities;
    mask: (N, M) the modalities in the fusion -> (N, K) fused probabilities no surer than evidence(own, mask)."""
    return flatten_to(fused, evidence(own, mask).max(1))
