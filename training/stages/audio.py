"""Stage 1, audio: the audio CNN + its head on the speech corpora, speaker-disjoint (training.data.DEFAULT_SPLITS).

With audio.select the epoch count is chosen on the validation speakers; then, with audio.refit, the tower is trained
again from scratch on the training and EmoDB validation speakers for that many epochs (more speakers; test speakers
unseen). Without audio.select the recipe's audio.epochs is trained directly (on train + EmoDB val with refit): the
count a selecting run chose, without spending the selection pass again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from stresslab.model import StressModel
from training.clip_folder import read_clip_folder
from training.config import TrainConfig
from training.data import default_split
from training.features import audio_arrays, audio_batch
from training.loop import Fitted, Log, Stage, device_of
from training.losses import class_weights, head_loss
from training.metrics import classification_report
from training.pools import audio_sets, cache_dir, pooled


@torch.no_grad()
def predict_audio(model: StressModel, feats: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """(T_i, F) feature arrays -> (N,) the audio head's emotion ids."""
    model.eval()
    out = []
    for i in range(0, len(feats), batch):
        x, n = audio_batch(feats[i: i + batch], model.config.audio.n_features)
        out.append(model.heads["audio"](model.audio(x.to(device_of(model)), n.to(device_of(model)))))
    return torch.cat(out).argmax(1).cpu().numpy()


def stage(model: StressModel, cfg: TrainConfig, feats: list[np.ndarray], y: np.ndarray, epochs: int, log: Log,
          val: tuple[list[np.ndarray], np.ndarray] | None = None) -> Stage:
    """Train on (feats, y) for `epochs`; with val, its UAR is scored each epoch (patience x 4: small, noisy)."""
    model.audio.fit_normalizer(feats)
    rng = np.random.default_rng(cfg.seed)
    b = cfg.audio.batch
    per_epoch = max(1, len(feats) // b)
    log("audio", train_clips=len(feats), samples_per_epoch=per_epoch * b)
    weights = class_weights(y)

    def batches():
        for _ in range(epochs):
            order = rng.permutation(len(feats))
            for i in range(per_epoch):
                idx = order[i * b: (i + 1) * b]
                x, n = audio_batch([feats[j] for j in idx], model.config.audio.n_features)
                crop = int(rng.integers(0, max(1, int(n.min()) // 5)))  # random start: a little time shift
                yield x[:, crop:], n - crop, y[idx]

    def loss(batch) -> torch.Tensor:
        x, n, yb = batch
        dev = device_of(model)
        return head_loss(model.heads["audio"](model.audio(x.to(dev), n.to(dev))), yb, weights, cfg.loss)

    evaluate = (lambda: classification_report(val[1], predict_audio(model, val[0]))["uar"]) if val else None
    return Stage("audio", [*model.audio.parameters(), *model.heads["audio"].parameters()], batches(), loss,
                 steps=epochs * per_epoch, lr=cfg.audio.lr, eval_every=per_epoch, evaluate=evaluate,
                 metric="val_uar", patience=cfg.optim.patience * 4, per_epoch=per_epoch)


def select_then_refit(model: StressModel, cfg: TrainConfig, fit: Callable[[Stage], Fitted], log: Log) -> None:
    """With audio.select, choose the epoch count on the validation speakers (early stopping); with audio.refit,
    train (again, from scratch) on train + EmoDB val for that many epochs, or audio.epochs without audio.select."""
    sets = audio_sets(model, cfg)
    epochs = cfg.audio.epochs
    if cfg.audio.select:
        feats, y = pooled(sets["train"])
        initial = copy.deepcopy(model.audio.state_dict()), copy.deepcopy(model.heads["audio"].state_dict())
        fitted = fit(stage(model, cfg, feats, y, cfg.audio.epochs, log, val=pooled(sets["val"])))
        if not cfg.audio.refit:
            return
        epochs = fitted.best_at or cfg.audio.epochs
        model.audio.load_state_dict(initial[0])
        model.heads["audio"].load_state_dict(initial[1])
    extra = [(c, d) for c, d in sets["val"] if c == "emodb"] if cfg.audio.refit else []
    if extra and cfg.audio.speeds != [1.0]:  # the validation speakers, speed-perturbed like the other training ones
        recs = default_split(read_clip_folder(Path(cfg.data) / "emodb"), "emodb")["val"]
        extra = [("emodb", audio_arrays(recs, model.config, "emodb-val", cache_dir(cfg),
                                        tuple(cfg.audio.speeds)))]
    feats, y = pooled(sets["train"] + extra)
    fit(stage(model, cfg, feats, y, epochs, log))
    log("audio", refit_epochs=epochs, refit_clips=len(feats), selected=cfg.audio.select)
