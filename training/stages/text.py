"""Stage 1, text: the top text-transformer layers + head on GoEmotions train (5% held out: its macro-F1 picks the
epoch), class-balanced: at most text.cap sentences per class and epoch."""

from __future__ import annotations

import numpy as np
import torch

from stresslab.model import StressModel
from training import data as D
from training.config import TrainConfig
from training.loop import Stage
from training.losses import class_weights, head_loss
from training.metrics import classification_report
from training.pools import text_sets


@torch.no_grad()
def predict_text(model: StressModel, texts: list[str], batch: int = 128) -> np.ndarray:
    """Sentences -> (N,) the text head's emotion ids."""
    model.eval()
    out = [model.heads["text"](model.text(texts[i: i + batch])) for i in range(0, len(texts), batch)]
    return torch.cat(out).argmax(1).cpu().numpy()


def stage(model: StressModel, cfg: TrainConfig) -> Stage:
    train, select = text_sets(cfg)
    rng = np.random.default_rng(cfg.seed)
    y = D.labels_of(train)
    select = [select[i] for i in D.balanced_indices(D.labels_of(select), 300, rng)]
    select_y, select_texts = D.labels_of(select), [r["text"] for r in select]
    model.text.set_trainable(model.config.text.trainable_layers)
    b = cfg.text.batch
    per_epoch = len(D.balanced_indices(y, cfg.text.cap, rng)) // b

    def batches():
        for _ in range(cfg.text.epochs):
            idx = D.balanced_indices(y, cfg.text.cap, rng)
            weights = class_weights(y[idx])
            for i in range(per_epoch):
                rows = idx[i * b: (i + 1) * b]
                yield [train[j]["text"] for j in rows], y[rows], weights

    def loss(batch) -> torch.Tensor:
        texts, yb, weights = batch
        return head_loss(model.heads["text"](model.text(texts)), yb, weights, cfg.loss)

    return Stage("text", [*model.text.parameters(), *model.heads["text"].parameters()], batches(), loss,
                 steps=cfg.text.epochs * per_epoch, lr=cfg.text.lr, eval_every=max(1, per_epoch),
                 evaluate=lambda: classification_report(select_y, predict_text(model, select_texts))["macro_f1"],
                 metric="select_macro_f1", patience=cfg.optim.patience, per_epoch=max(1, per_epoch))
