"""Honest confidence: temperature scaling per tower and for the fused head, fitted on validation logits, and the
"not sure" threshold on the fused confidence.

- fit_temperature: the T minimising the negative log-likelihood of softmax(logits / T) (Guo et al., 2017); one
  scalar, so the predicted class never changes, only how sure the model says it is.
- not_sure_threshold: the confidence below which the top answer is right less often than `min_accuracy` (0.5:
  more often wrong than right), read off an isotonic (monotone) fit of correctness against confidence.
Both are stored in ModelConfig (temperatures, not_sure_below), which stresslab.analysis applies.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from stresslab.analysis import softmax  # (..., K) logits / temperature -> probabilities: the analysis's own
from training.metrics import expected_calibration_error


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels y (N,) under softmax(logits / temperature)."""
    p = softmax(logits, temperature)[np.arange(len(y)), np.asarray(y)]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """(N, K) validation logits and (N,) labels -> the temperature in [low, high] with the least NLL."""
    logits, y = np.asarray(logits, np.float64), np.asarray(y)
    if logits.ndim != 2 or len(logits) != len(y) or len(y) == 0:
        raise ValueError(f"expected (N, K) logits and (N,) labels with N > 0, got {logits.shape} and {y.shape}")
    res = minimize_scalar(lambda s: nll(logits, y, float(np.exp(s))), bounds=(np.log(low), np.log(high)),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def not_sure_threshold(probs: np.ndarray, y: np.ndarray, min_accuracy: float = 0.5) -> float:
    """(N, K) calibrated validation probabilities, (N,) labels -> the smallest confidence at which the monotone
    fit of "top answer right" against confidence reaches min_accuracy (0.0 if it always does, 1.0 if never)."""
    probs, y = np.asarray(probs), np.asarray(y)
    conf, right = probs.max(1), (probs.argmax(1) == y).astype(np.float64)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(conf, right)
    grid = np.sort(conf)
    ok = iso.predict(grid) >= min_accuracy
    if ok.all():
        return 0.0
    if not ok.any():
        return 1.0
    return float(grid[np.argmax(ok)])


def calibrate(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, dict]:
    """{name: (N, K) validation logits}, {name: (N,) labels} -> {name: {temperature, ece_before, ece_after, n}}."""
    out = {}
    for name, z in logits.items():
        y = np.asarray(labels[name])
        t = fit_temperature(z, y)
        out[name] = {"temperature": round(t, 4), "n": int(len(y)),
                     "ece_before": round(expected_calibration_error(softmax(z), y), 4),
                     "ece_after": round(expected_calibration_error(softmax(z, t), y), 4),
                     "nll_before": round(nll(z, y), 4), "nll_after": round(nll(z, y, t), 4)}
    return out
