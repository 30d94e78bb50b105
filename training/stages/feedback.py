"""The fine-tuning stage: corrections (a clip folder from `training.prepare feedback`), each batch mixed with
replayed pairings of the original data so the model does not forget. Once enough corrections carry a stress
rating, a learned stress head joins the model; grow_stress_head() adds it before accelerate places the model."""

from __future__ import annotations

import numpy as np
import torch

from stresslab.labels import EMOTIONS, MODALITIES
from stresslab.model import StressModel
from training.clip_folder import read_clip_folder
from training.config import TrainConfig
from training.loop import Log, Stage, device_of
from training.losses import fusion_loss
from training.pools import Pools, embed_inputs, feedback_inputs


def grow_stress_head(model: StressModel, cfg: TrainConfig, log: Log) -> bool:
    """Give the model a learned stress head when it has none and cfg.feedback.data holds at least
    stress_min_ratings rated corrections. Call it before accelerate's prepare, so the head is placed with the
    rest of the model. Returns whether a head was added."""
    if model.config.stress_head:
        return False
    rated = sum(r.get("stress") is not None for r in read_clip_folder(cfg.feedback.data))
    if rated < cfg.feedback.stress_min_ratings:
        return False
    model.config.stress_head = True
    model.stress_head = torch.nn.Linear(model.config.embed_dim, 1)
    log("feedback", added_stress_head=True, rated=rated)
    return True


def embed_items(model: StressModel, items: list[dict]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Corrections (feedback_inputs) through the towers, with gradients: ({modality: (B, D)}, (B, 3) bool mask)."""
    emb = {m: torch.zeros(len(items), model.config.embed_dim, device=device_of(model)) for m in MODALITIES}
    mask = torch.zeros(len(items), len(MODALITIES), dtype=torch.bool)
    for k, it in enumerate(items):
        for j, (m, e) in enumerate(embed_inputs(model, it["inputs"], it["text"]).items()):
            if e is not None:
                emb[m][k], mask[k, j] = e, True
    return emb, mask


def stage(model: StressModel, cfg: TrainConfig, log: Log) -> Stage:
    fb = cfg.feedback
    items, skipped = feedback_inputs(model, fb.data)
    log("feedback", corrections=len(items), skipped=skipped)
    if not items:
        raise SystemExit(f"error: no usable corrections in {fb.data} ({skipped})")
    pools = Pools(model, cfg, "train")
    rng = np.random.default_rng(cfg.seed + 4)
    model.text.set_trainable(model.config.text.trainable_layers)
    n_new = max(1, int(round(fb.batch * (1 - fb.replay))))

    def batches():
        for _ in range(fb.steps):
            new = [items[j] for j in rng.integers(0, len(items), n_new)]
            yield new, pools.sample(fb.batch - n_new, cfg.modality_p, rng)

    def loss(batch) -> torch.Tensor:
        new, (ry, ridx, rmask) = batch
        emb, mask = embed_items(model, new)
        replay = pools.towers(model, ridx, rmask)
        emb = {m: torch.cat([emb[m], replay[m]]) for m in MODALITIES}
        y = torch.cat([torch.tensor([it["y"] for it in new]), torch.from_numpy(ry)])
        stress = torch.cat([torch.tensor([it["stress"] for it in new]), torch.full((len(ry),), -1.0)])
        soft = torch.zeros(len(y), len(EMOTIONS))  # annotators' label distributions (rows of zeros: none)
        for k, it in enumerate(new):
            if it.get("soft"):
                soft[k] = torch.tensor(it["soft"])
        return fusion_loss(model, emb, torch.cat([mask, rmask]), y, cfg.loss, stress, soft=soft)

    return Stage("feedback", list(model.parameters()), batches(), loss, steps=fb.steps, lr=fb.lr,
                 eval_every=max(1, cfg.optim.eval_every // 2), frozen_batchnorm=True)
