"""Stages 2 and 3: attention fusion on frozen towers, then everything end to end.

Both learn from label-matched pairings (training.pools.Pools): per row a class, and for each modality an input of
that class, present with probability modality_p (modality dropout). Both are scored by the fused UAR on pairings
drawn from the validation parts.
"""

from __future__ import annotations

import numpy as np
import torch

from stresslab.labels import MODALITIES
from stresslab.model import StressModel
from training.config import TrainConfig
from training.loop import Stage, device_of
from training.losses import fusion_loss
from training.metrics import classification_report
from training.pools import Pools, real_clips


@torch.no_grad()
def fused_uar(model: StressModel, emb: dict[str, torch.Tensor], mask: torch.Tensor, y: torch.Tensor) -> float:
    """Unweighted average recall of the fused head: emb {modality: (N, D)}, mask (N, 3), y (N,)."""
    model.eval()
    dev = device_of(model)
    pred = model.predict({m: e.to(dev) for m, e in emb.items()}, mask.to(dev)).fused_logits.argmax(1)
    return classification_report(y.cpu().numpy(), pred.cpu().numpy())["uar"]


def pools_of(model: StressModel, cfg: TrainConfig) -> dict[str, Pools]:
    return {part: Pools(model, cfg, part) for part in ("train", "val")}


def stage(model: StressModel, cfg: TrainConfig) -> Stage:
    """Fusion + fused head on the frozen towers' embeddings of pairings, plus the real CREMA-D training clips in
    every batch."""
    rng = np.random.default_rng(cfg.seed + 2)
    pools = pools_of(model, cfg)
    for p in pools.values():
        p.embed(model)
    real_emb, real_mask, real_y = real_clips(model, cfg, "train")
    vy, vidx, vmask = pools["val"].sample(3000, cfg.modality_p, np.random.default_rng(99))
    val_emb = {m: pools["val"].emb[m][np.maximum(vidx[m], 0)] for m in MODALITIES}

    def batches():
        for _ in range(cfg.fusion.steps):
            y, idx, mask = pools["train"].sample(cfg.fusion.batch, cfg.modality_p, rng)
            emb = {m: pools["train"].emb[m][np.maximum(idx[m], 0)] for m in MODALITIES}
            y = torch.from_numpy(y)
            if len(real_y):
                emb = {m: torch.cat([emb[m], real_emb[m]]) for m in MODALITIES}
                mask, y = torch.cat([mask, real_mask]), torch.cat([y, real_y])
            yield emb, mask, y

    return Stage("fusion", [*model.fusion.parameters(), *model.fused_head.parameters()], batches(),
                 lambda batch: fusion_loss(model, *batch, cfg.loss), steps=cfg.fusion.steps, lr=cfg.fusion.lr,
                 eval_every=cfg.optim.eval_every,
                 evaluate=lambda: fused_uar(model, val_emb, vmask, torch.from_numpy(vy)),
                 metric="val_pairing_uar", patience=cfg.optim.patience)


def joint_stage(model: StressModel, cfg: TrainConfig) -> Stage:
    """Every parameter (the text tower's top layers only) on raw pairings through the towers, at a low rate."""
    rng = np.random.default_rng(cfg.seed + 3)
    pools = pools_of(model, cfg)
    vy, vidx, vmask = pools["val"].sample(600, cfg.modality_p, np.random.default_rng(98))
    model.text.set_trainable(model.config.text.trainable_layers)

    def batches():
        for _ in range(cfg.joint.steps):
            y, idx, mask = pools["train"].sample(cfg.joint.batch, cfg.modality_p, rng)
            yield idx, mask, torch.from_numpy(y)

    def loss(batch) -> torch.Tensor:
        idx, mask, y = batch
        return fusion_loss(model, pools["train"].towers(model, idx, mask), mask, y, cfg.loss)

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        return fused_uar(model, pools["val"].towers(model, vidx, vmask), vmask, torch.from_numpy(vy))

    return Stage("joint", list(model.parameters()), batches(), loss, steps=cfg.joint.steps, lr=cfg.joint.lr,
                 eval_every=max(1, cfg.optim.eval_every // 2), evaluate=evaluate, metric="val_pairing_uar",
                 patience=cfg.optim.patience, frozen_batchnorm=True)
