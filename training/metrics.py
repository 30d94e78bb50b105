"""Classification metrics as small pure functions over label ids (numpy), checked against hand-computed values."""

from __future__ import annotations

import numpy as np

from stresslab.labels import EMOTIONS


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int = len(EMOTIONS)) -> np.ndarray:
    """(k, k) counts: rows are true classes, columns predicted ones."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def classification_report(y_true, y_pred, probs: np.ndarray | None = None, k: int = len(EMOTIONS)) -> dict:
    """n, accuracy, uar (mean recall over classes present in y_true), macro_f1 (over classes present in y_true or
    predicted), per-class recall, the confusion matrix, and the expected calibration error when probs (N, k) given."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    m = confusion(y_true, y_pred, k)
    support, predicted, hit = m.sum(1), m.sum(0), np.diag(m)
    present = support > 0
    recall = np.where(present, hit / np.maximum(support, 1), np.nan)
    precision = np.where(predicted > 0, hit / np.maximum(predicted, 1), 0.0)
    f1 = np.where(precision + np.nan_to_num(recall) > 0,
                  2 * precision * np.nan_to_num(recall) / np.maximum(precision + np.nan_to_num(recall), 1e-12), 0.0)
    counted = present | (predicted > 0)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(hit.sum() / max(1, len(y_true))),
        "uar": float(np.nanmean(recall)) if present.any() else float("nan"),
        "macro_f1": float(f1[counted].mean()) if counted.any() else float("nan"),
        "recall": {EMOTIONS[i]: (None if np.isnan(recall[i]) else round(float(recall[i]), 4)) for i in range(k)},
        "confusion": m.tolist(),
    }
    if probs is not None:
        out["ece"] = expected_calibration_error(np.asarray(probs), y_true)
    return out


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """Sum over equal-width confidence bins of |accuracy - confidence| weighted by the bin's share of samples."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(ece)
