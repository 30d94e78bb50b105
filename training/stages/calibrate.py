"""Stage 4, calibrate: temperature scaling of each tower's head and of the fused head on validation data, and the
"not sure" threshold on the fused confidence as the analysis shows it, bounded by the evidence of the modalities
present (stresslab.evidence), on validation pairings (training.calibrate). No weight changes: the results go into
ModelConfig.temperatures and ModelConfig.not_sure_below, which the analysis applies.

Validation data = the validation parts of training.pools.Pools (FER2013's held-out tenth, the speech corpora's
validation speakers, GoEmotions' held-out twentieth); the fused head on label-matched pairings drawn from them.
With audio.refit the EmoDB validation speakers were trained on at the end, so they leave the audio set here.
"""

from __future__ import annotations

import numpy as np
import torch

from stresslab.evidence import bound_by_evidence
from stresslab.labels import MODALITIES
from stresslab.model import StressModel
from training.calibrate import calibrate, not_sure_threshold, softmax
from training.config import TrainConfig
from training.features import split_features
from training.loop import Log, device_of
from training.metrics import expected_calibration_error
from training.pools import Pools, audio_sets


@torch.no_grad()
def run(model: StressModel, cfg: TrainConfig, fit: object, log: Log) -> dict:
    """Fit the temperatures and the threshold into model.config; returns the calibration report (also logged)."""
    model.eval()
    pools = Pools(model, cfg, "val")
    if cfg.audio.refit:  # the EmoDB validation speakers were trained on by the refit: not validation any more
        sets = [d for c, d in audio_sets(model, cfg)["val"] if c != "emodb"]
        if sets:
            pools.raw["audio"] = [f for d in sets for f in split_features(d)]
            pools.y["audio"] = np.concatenate([d["y"] for d in sets])
            k = len(pools.by_class["audio"])
            pools.by_class["audio"] = [np.flatnonzero(pools.y["audio"] == c) for c in range(k)]
    pools.embed(model)
    dev = device_of(model)
    logits = {m: model.heads[m](pools.emb[m].to(dev)).cpu().numpy() for m in MODALITIES if len(pools.y[m])}
    labels = {m: pools.y[m] for m in logits}
    y, idx, mask = pools.sample(cfg.calibrate.pairings, cfg.modality_p, np.random.default_rng(cfg.seed + 7))
    emb = {m: pools.emb[m][np.maximum(idx[m], 0)].to(dev) for m in MODALITIES}
    pred = model.predict(emb, mask.to(dev))
    logits["fused"] = pred.fused_logits.cpu().numpy()
    labels["fused"] = y
    report = calibrate(logits, labels)
    temps = {m: r["temperature"] for m, r in report.items()}
    # what the analysis shows: the calibrated fused answer, no surer than the pairing's own calibrated heads together
    own = np.stack([softmax(pred.modality_logits[m].cpu().numpy(), temps[m]) for m in MODALITIES], 1)
    shown = bound_by_evidence(softmax(logits["fused"], temps["fused"]), own, mask.numpy())
    report["fused"]["ece_shown"] = round(expected_calibration_error(shown, y), 4)
    threshold = not_sure_threshold(shown, y, cfg.calibrate.min_accuracy)
    model.config.temperatures = temps
    model.config.not_sure_below = round(threshold, 4)
    for m, r in report.items():
        log("calibrate", modality=m, **r)
    log("calibrate", not_sure_below=model.config.not_sure_below)
    return {"modalities": report, "not_sure_below": model.config.not_sure_below}
