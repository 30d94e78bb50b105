"""The one fit loop that every training stage runs, and the run's log.

A Stage says only what differs from one stage to the next: which parameters it trains, its batches, its loss,
its budget (steps, learning rate) and how to score it. fit() does the rest, the same way for all of them: AdamW
on the stage's parameters (every other parameter is frozen for the stage and unfrozen after it), a cosine schedule
with linear warm-up, gradient clipping, evaluation every `eval_every` steps and at the end, early stopping that
restores the best weights, a log line per evaluation, and accelerate's backward (so the same code runs on a GPU).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from training.config import Optimisation

Log = Callable[..., None]  # log(stage, **values)


@dataclass
class Stage:
    """One stage of training. batches yields `steps` items, each what loss() takes (no forward pass in there:
    loss() runs with the model in training mode); evaluate() returns a score, higher is better (None: the stage
    neither evaluates nor stops early). With per_epoch > 0, evaluations and log lines count epochs of that many
    steps; otherwise steps."""

    name: str
    params: list[torch.nn.Parameter]
    batches: Iterable[Any]
    loss: Callable[[Any], torch.Tensor]
    steps: int
    lr: float
    eval_every: int
    evaluate: Callable[[], float] | None = None
    metric: str = "score"
    patience: int = 3
    per_epoch: int = 0
    frozen_batchnorm: bool = False  # keep BatchNorm running statistics as they are (small, mixed batches)


@dataclass
class Fitted:
    """What fit() did: steps taken, the best score and the epoch (or step) it was reached at (None: never)."""

    steps: int
    best: float | None
    best_at: int | None


class EarlyStopping:
    """Keeps the best weights of `module` by a higher-is-better score; update() says stop after `patience` bad
    evaluations in a row; restore() loads the best weights back."""

    def __init__(self, module: torch.nn.Module, patience: int):
        self.module, self.patience = module, patience
        self.best, self.best_at, self.bad, self.state = -1.0, None, 0, None

    def update(self, score: float, at: int | None = None) -> bool:
        if score > self.best:
            self.best, self.best_at, self.bad = score, at, 0
            self.state = copy.deepcopy(self.module.state_dict())
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)


def device_of(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (accelerate put them there): inputs go there."""
    return next(model.parameters()).device


def freeze_batchnorm(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def optimiser(params: list[torch.nn.Parameter], lr: float, steps: int, optim: Optimisation):
    """AdamW over the parameters that require gradients + a cosine schedule with warm-up over `steps`."""
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=optim.weight_decay)
    return opt, get_cosine_schedule_with_warmup(opt, int(optim.warmup * steps), max(1, steps))


def fit(model: torch.nn.Module, stage: Stage, acc: Accelerator, optim: Optimisation, log: Log) -> Fitted:
    """Train stage.params of model on stage.batches (see the module docstring); returns what happened."""
    chosen = {id(p) for p in stage.params}
    was = [(p, p.requires_grad) for p in model.parameters()]
    for p, flag in was:
        p.requires_grad = flag and id(p) in chosen
    params = [p for p in stage.params if p.requires_grad]
    opt, sched = optimiser(params, stage.lr, stage.steps, optim)
    stopper = EarlyStopping(model, stage.patience) if stage.evaluate is not None else None
    step = 0
    try:
        bar = tqdm(stage.batches, total=stage.steps, desc=stage.name)
        for step, batch in enumerate(bar, 1):
            model.train()
            if stage.frozen_batchnorm:
                freeze_batchnorm(model)
            loss = stage.loss(batch)
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(params, optim.clip_grad)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if step == 1:
                log(stage.name, step=1, loss=round(loss.item(), 4))
            if step % stage.eval_every and step != stage.steps:
                continue
            at = step // stage.per_epoch if stage.per_epoch else step
            values: dict[str, Any] = {"epoch" if stage.per_epoch else "step": at}
            if stopper is not None:
                values[stage.metric] = score = stage.evaluate()
            log(stage.name, **values, loss=round(loss.item(), 4))
            if stopper is not None and stopper.update(score, at):
                break
        if stopper is not None:
            stopper.restore()
    finally:
        for p, flag in was:
            p.requires_grad = flag
    return Fitted(step, stopper.best if stopper and stopper.best_at is not None else None,
                  stopper.best_at if stopper else None)


class RunLog:
    """log(stage, **values): one JSON line in out/log.jsonl (with the time) and one readable line on the console."""

    def __init__(self, path: Path):
        self.file = path.open("a", encoding="utf-8")

    def __call__(self, stage: str, **values) -> None:
        self.file.write(json.dumps({"stage": stage, "time": round(time.time(), 1), **values}) + "\n")
        self.file.flush()
        tqdm.write(f"{stage}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in values.items()))

    def close(self) -> None:
        self.file.close()
