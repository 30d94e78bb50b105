"""Temperature scaling and the "not sure" threshold (training.calibrate) on logits with a known miscalibration."""

import json

import numpy as np
import pytest
import torch
from test_train import corpora  # noqa: F401  (the module-scoped fixture: small real corpora, prepared)

from stresslab.model import StressModel
from training.calibrate import calibrate, fit_temperature, nll, not_sure_threshold, softmax
from training.metrics import expected_calibration_error
from training.train import main


def _sampled(n: int, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the logits handed out are scale * z (over-confident when scale > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 6))
    p = softmax(z)
    y = np.array([rng.choice(6, p=row) for row in p])
    return scale * z, y


def test_temperature_recovers_the_overconfidence_factor():
    logits, y = _sampled(6000, 3.0)
    t = fit_temperature(logits, y)
    assert 2.7 < t < 3.3
    assert nll(logits, y, t) < nll(logits, y)
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()  # the answer itself never changes
    report = calibrate({"audio": logits}, {"audio": y})["audio"]
    assert report["ece_after"] < 0.5 * report["ece_before"] and report["n"] == 6000
    honest, y2 = _sampled(6000, 1.0, seed=1)
    assert 0.9 < fit_temperature(honest, y2) < 1.1
    with pytest.raises(ValueError, match="expected"):
        fit_temperature(np.zeros((3, 6)), np.zeros(2, int))


def test_not_sure_threshold_where_the_answer_turns_more_often_wrong_than_right():
    logits, y = _sampled(8000, 1.0, seed=2)
    p = softmax(logits)  # calibrated by construction: confidence c is right about c of the time
    t = not_sure_threshold(p, y)
    assert 0.4 < t < 0.6
    conf, right = p.max(1), p.argmax(1) == y
    assert right[(conf > t - 0.1) & (conf < t)].mean() < 0.5 < right[(conf >= t) & (conf < t + 0.1)].mean()
    assert expected_calibration_error(p, y) < 0.03
    assert not_sure_threshold(np.eye(6)[y], y) == 0.0  # always right: never unsure
    assert not_sure_threshold(np.eye(6)[(y + 1) % 6], y) == 1.0  # always wrong: always unsure


def test_calibrate_stage_writes_temperatures_and_threshold_into_the_checkpoint(corpora, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    args = ["--config", "training/configs/smoke.toml", "--set", f'out="{out}"', f'data="{corpora}"',
            f'init="{tiny_model_dir}"', 'stages=["calibrate"]', "calibrate.pairings=300"]
    assert main(args) == 0
    model = StressModel.from_pretrained(out / "checkpoint")
    before = StressModel.from_pretrained(tiny_model_dir)
    assert set(model.config.temperatures) == {"video", "audio", "text", "fused"}
    assert all(0.05 <= t <= 20 for t in model.config.temperatures.values())
    assert 0.0 <= model.config.not_sure_below <= 1.0
    for name, tensor in before.state_dict().items():  # calibration changes no weight
        assert torch.equal(tensor, model.state_dict()[name])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    rows = {r["modality"]: r for r in log if r["stage"] == "calibrate" and "modality" in r}
    assert set(rows) == {"video", "audio", "text", "fused"}
    for r in rows.values():
        assert r["nll_after"] <= r["nll_before"] + 1e-6 and r["n"] > 0
