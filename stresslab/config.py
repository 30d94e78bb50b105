"""ModelConfig: everything needed to rebuild a model without its weights, as stored in a checkpoint's config.json,
checked field by field before anything is built. Torch-free: the ONNX runtime reads it too.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .labels import EMOTIONS, MODALITIES
from .towers.audio import AudioConfig
from .towers.text import TextConfig
from .towers.video import VideoConfig

FORMAT = "stresslab-checkpoint"
FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"
HUB_FILES = ["config.json", "model.safetensors", "tokenizer/*.json", "tokenizer/*.txt", "tokenizer/*.model",
             "README.md"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message (one line) says which and why."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild a StressModel without its weights."""

    emotions: list[str] = field(default_factory=lambda: list(EMOTIONS))
    embed_dim: int = 128
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    stress_head: bool = False  # True once a stress head was trained on rated corrections
    not_sure_below: float = 0.0  # a fused confidence below this is reported as uncertain (with the top two)
    temperatures: dict[str, float] = field(default_factory=dict)  # "video"/"audio"/"text"/"fused" -> T (logits / T)
    name: str = "stresslab"
    version: str = "0.1.0"

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Rebuild from config.json's contents, checking every value's type and every size (ValueError naming the
        field): unknown keys are an error (a newer format)."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        if d.pop("format", FORMAT) != FORMAT or not isinstance(d.get("format_version", 1), int) \
                or d.pop("format_version", 1) > FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} config; upgrade stresslab to read it")
        sub = {"video": VideoConfig, "audio": AudioConfig, "text": TextConfig}
        for key, kind in sub.items():
            if key in d:
                d[key] = _dataclass_from(kind, d[key], key)
        config = _dataclass_from(cls, d, "")
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError unless every size is one a model can be built with (checked before any allocation)."""
        e = self.emotions
        if not 2 <= len(e) <= 64 or len(set(e)) != len(e) or not all(isinstance(x, str) and x for x in e):
            raise ValueError(f"emotions: expected 2 to 64 distinct names, got {e!r}"[:200])
        if not 0.0 <= self.not_sure_below <= 1.0:
            raise ValueError(f"not_sure_below: expected a probability from 0 to 1, got {self.not_sure_below}")
        for key, t in self.temperatures.items():
            if key not in (*MODALITIES, "fused") or isinstance(t, bool) or not isinstance(t, (int, float)) \
                    or not 0.01 <= t <= 100:
                raise ValueError(f"temperatures.{key}: expected a modality or 'fused' -> 0.01 to 100, got {t!r}"[:200])
        for dotted, (low, high) in _SIZES.items():
            owner, _, name = dotted.rpartition(".")
            value = getattr(getattr(self, owner) if owner else self, name)
            if not low <= value <= high:
                raise ValueError(f"{dotted}: expected {low} to {high}, got {value}")
        if self.video.arch not in ("plain", "resnet"):
            raise ValueError(f"video.arch: expected 'plain' or 'resnet', got {self.video.arch!r}"[:200])
        widths = self.video.widths
        if not 1 <= len(widths) <= 8 or not all(type(w) is int and 1 <= w <= 4096 for w in widths) \
                or self.video.image_size >> len(widths) < 1:
            raise ValueError(f"video.widths: expected 1 to 8 channel counts from 1 to 4096, one 2x2 pooling each "
                             f"within image_size {self.video.image_size}, got {widths!r}"[:200])
        convs = self.video.convs
        if convs is not None and (len(convs) != len(widths) or not all(type(c) is int and 1 <= c <= 8 for c in convs)):
            raise ValueError(f"video.convs: expected one count from 1 to 8 per width ({len(widths)}), "
                             f"got {convs!r}"[:200])
        for dotted, nested in (("video.resnet", self.video.resnet), ("text.backbone_config", self.text.backbone_config),
                               ("audio.pretrained_config", self.audio.pretrained_config or {})):
            _check_nested(dotted, nested)


# every size that decides an allocation or a loop: (smallest, largest)
_SIZES = {"embed_dim": (1, 4096), "video.image_size": (8, 1024), "video.channels": (1, 3),
          "video.detect_side": (16, 8192), "video.min_face": (1, 8192), "audio.sample_rate": (1000, 192_000),
          "audio.n_mfcc": (1, 128), "audio.n_fft": (16, 65_536), "audio.hop_length": (1, 65_536),
          "audio.channels": (1, 4096), "text.max_length": (1, 8192), "text.trainable_layers": (0, 1024)}
_SIZE_KEY = re.compile(r"size|dim|num_|layers|heads|depth|length|embeddings|channels|kernel|stride|groups")
_COUNT_KEY = re.compile(r"layers|depths|num_.*(heads|groups|blocks)")
_TYPES: dict[str, Any] = {"int": int, "float": (int, float), "str": str, "bool": bool, "dict": dict, "list": list}


def _dataclass_from(kind, d: Any, where: str):
    label = where or kind.__name__
    if not isinstance(d, dict):
        raise ValueError(f"{label}: expected a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown keys {sorted(unknown)}")
    for name, value in d.items():
        annotation = str(fields[name].type)
        optional = annotation.endswith("| None")
        expected = _TYPES.get(annotation.removesuffix("| None").strip().split("[")[0])
        if (value is None and optional) or expected is None:  # a nested config is checked on its own
            continue
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise ValueError(f"{where + '.' if where else ''}{name}: expected {annotation}, got {value!r}"[:200])
    return kind(**d)


def _check_nested(where: str, value: Any, key: str = "") -> None:
    """A stored transformers config (or ResNet settings): sizes and counts must be plausible."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_nested(f"{where}.{k}", v, str(k))
    elif isinstance(value, list):
        if len(value) > 256:
            raise ValueError(f"{where}: {len(value)} entries, expected at most 256")
        for v in value:
            _check_nested(where, v, key)
    elif isinstance(value, int) and not isinstance(value, bool):
        high = 256 if _COUNT_KEY.search(key) else 1_000_000
        low = 0 if _SIZE_KEY.search(key) else -1
        if not low <= value <= high:
            raise ValueError(f"{where}: expected {low} to {high}, got {value}")


def is_hub_id(name: str | Path) -> bool:
    """Whether a model name can only be a Hugging Face repo id: no folder by that name here, and none of what only
    a path has (a suffix, a leading ".", "/" or "~")."""
    return not (Path(name).expanduser().is_dir() or Path(name).suffix or str(name).startswith((".", "/", "~")))


def default_model_name() -> str:
    """STRESSLAB_MODEL if set, else the bundled models/default folder."""
    return os.environ.get("STRESSLAB_MODEL") or str(DEFAULT_MODEL_DIR)
