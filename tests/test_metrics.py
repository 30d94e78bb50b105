"""Metrics against values computed by hand."""

import numpy as np
import pytest

from training.metrics import classification_report, confusion, expected_calibration_error


def test_hand_computed_example():
    # classes 0, 1, 2 only; true: 0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    r = classification_report(y_true, y_pred)
    assert r["n"] == 6 and r["accuracy"] == pytest.approx(4 / 6)
    # recalls: 2/3, 1/2, 1/1 -> UAR = (2/3 + 1/2 + 1) / 3
    assert r["uar"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    # precisions: 2/2, 1/2, 1/2 ; F1: 0.8, 0.5, 2/3
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r["recall"]["anger"] == pytest.approx(0.6667, abs=1e-4) and r["recall"]["happy"] is None
    assert r["confusion"][0][:3] == [2, 1, 0] and confusion(y_true, y_pred).sum() == 6


def test_ece():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # the 0.9 bin: half the samples, accuracy 1/2 -> 0.5 * 0.4; the 0.6 bin: half, accuracy 1 -> 0.5 * 0.4
    assert expected_calibration_error(probs, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
