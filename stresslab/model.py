"""StressModel: three towers (video, audio, text), a head per tower, attention fusion, a fused head, and
optionally a learned stress head; its config, and the checkpoint format.

Checkpoint = a folder (or a Hub model repo) holding
  config.json        ModelConfig as JSON (architecture, label names, backbone configs, feature settings, version)
  model.safetensors  the weights (never pickle)
  tokenizer/         the text tokenizer's files
  README.md          the model card
Loading a folder reads only these files (JSON and safetensors: never pickle) and fetches nothing: the backbones are
rebuilt from the configs stored in config.json, never from the Hub ids it names (those record provenance and are
used only by StressModel.build, in training). A Hub model id is downloaded (those files only) because the caller
asked for it. Every size in config.json is checked, and the model it describes is built on the "meta" device and
compared with the tensors listed in model.safetensors' header, before anything is allocated; any failure is a
CheckpointError (a ValueError) with a one-line message.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .fusion import MODALITIES, AttentionFusion, FusionOutput
from .labels import EMOTIONS
from .towers.audio import AudioConfig, AudioEncoder
from .towers.text import TextConfig, TextEncoder
from .towers.video import VideoConfig, VideoEncoder

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


@dataclass
class Prediction:
    """Outputs for a batch of B rows. Logits are (B, 6); weights (B, 3) in MODALITIES order; stress (B,)."""

    fused_logits: torch.Tensor
    weights: torch.Tensor
    modality_logits: dict[str, torch.Tensor]
    stress: torch.Tensor | None


class StressModel(nn.Module):
    """Towers -> embeddings (B, D) each -> per-modality heads + attention fusion -> fused head (+ stress head)."""

    def __init__(self, config: ModelConfig, text: TextEncoder):
        super().__init__()
        self.config = config
        d, k = config.embed_dim, len(config.emotions)
        self.video = VideoEncoder(config.video, d)
        self.audio = AudioEncoder(config.audio, d)
        self.text = text
        self.heads = nn.ModuleDict({m: nn.Linear(d, k) for m in MODALITIES})
        self.fusion = AttentionFusion(d)
        self.fused_head = nn.Sequential(nn.Dropout(0.2), nn.Linear(d, k))
        self.stress_head = nn.Linear(d, 1) if config.stress_head else None

    @classmethod
    def build(cls, config: ModelConfig, text_source: str | None = None) -> StressModel:
        """A new model for training: text tower from pretrained weights (Hub id or local folder)."""
        text = TextEncoder.from_backbone(config.text, config.embed_dim, text_source)
        model = cls(config, text)
        if config.video.backbone_id:
            model.video = VideoEncoder.from_backbone(config.video, config.embed_dim)
        return model

    def predict(self, embeddings: dict[str, torch.Tensor], mask: torch.Tensor) -> Prediction:
        """embeddings: {modality: (B, D)} (absent ones may be left out); mask: (B, 3) bool -> Prediction."""
        b = mask.shape[0]
        ref = next(iter(embeddings.values()))
        stacked = torch.stack([embeddings.get(m, ref.new_zeros(b, ref.shape[1])) for m in MODALITIES], 1)
        out: FusionOutput = self.fusion(stacked, mask)
        logits = {m: self.heads[m](embeddings[m]) for m in MODALITIES if m in embeddings}
        stress = torch.sigmoid(self.stress_head(out.fused)).squeeze(-1) if self.stress_head is not None else None
        return Prediction(self.fused_head(out.fused), out.weights, logits, stress)

    # --- checkpoint -------------------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, model_card: str | None = None, half: bool = False) -> Path:
        """Write config.json, model.safetensors (float16 when half), tokenizer/ and README.md into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        self.text.tokenizer.save_pretrained(str(folder / "tokenizer"))
        if model_card is not None or not (folder / "README.md").exists():
            (folder / "README.md").write_text(model_card or _minimal_card(self.config))
        return folder

    @classmethod
    def from_pretrained(cls, name: str | Path, revision: str | None = None, token: str | None = None) -> StressModel:
        """Load a checkpoint from a local folder (its own files only, nothing fetched) or a Hugging Face model repo
        id (downloaded), in eval mode on the CPU. FileNotFoundError when there is none; CheckpointError (one line)
        for anything else that stops it loading: see the module docstring for what is checked."""
        folder = Path(name).expanduser()
        if not folder.is_dir():
            if Path(name).suffix or str(name).startswith((".", "/", "~")):
                raise FileNotFoundError(f"no checkpoint folder at {name}")
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(str(name), revision=revision, token=token, allow_patterns=HUB_FILES))
            except Exception as e:  # offline, no such repo, no access: one line
                raise CheckpointError(f"{name}: cannot download the checkpoint ({_first_line(e)})") from None
        for needed in ("config.json", "model.safetensors", "tokenizer"):
            if not (folder / needed).exists():
                raise FileNotFoundError(f"{folder} is not a stresslab checkpoint: {needed} is missing")
        try:
            model = cls._load(folder)
        except Exception as e:
            raise CheckpointError(f"{name}: not a loadable stresslab checkpoint: {_first_line(e)}") from None
        model.source = str(name)
        return model.eval()

    @classmethod
    def _load(cls, folder: Path) -> StressModel:
        from transformers import AutoTokenizer

        if (folder / "config.json").stat().st_size > 1 << 20:
            raise ValueError("config.json is over 1 MB: not a model config")
        config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        if config.audio.pretrained_id and not config.audio.pretrained_config:
            raise ValueError(f"audio.pretrained_id {config.audio.pretrained_id!r} comes without its stored "
                             "pretrained_config: a checkpoint loads from its own files only and fetches nothing")
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        weights = str(folder / "model.safetensors")
        with torch.device("meta"):  # shapes only: no memory is allocated
            skeleton = cls(config, TextEncoder(config.text, config.embed_dim, tokenizer))
        expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
        with safe_open(weights, "pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        if stored != expected:
            diff = sorted(set(stored) ^ set(expected)) or [k for k in expected if stored[k] != expected[k]]
            raise ValueError(f"config.json does not describe the weights in model.safetensors ({len(diff)} tensors "
                             f"differ, e.g. {diff[0]})")
        model = cls(config, TextEncoder(config.text, config.embed_dim, tokenizer))
        model.load_state_dict(load_file(weights), strict=True)
        return model

    def push_to_hub(self, repo_id: str, token: str | None = None, private: bool = True,
                    model_card: str | None = None, commit_message: str = "Upload stresslab model") -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, model_card=model_card)
            return str(api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def _minimal_card(config: ModelConfig) -> str:
    return (f"---\nlibrary_name: stresslab\ntags: [emotion-recognition, multimodal]\n---\n# {config.name}\n\n"
            "A stresslab checkpoint (video, audio and text towers with attention fusion). "
            "No training details were recorded for it.\n")


def default_model_name() -> str:
    """STRESSLAB_MODEL if set, else the bundled models/default folder."""
    return os.environ.get("STRESSLAB_MODEL") or str(DEFAULT_MODEL_DIR)


@functools.lru_cache(maxsize=4)
def _cached(name: str) -> StressModel:
    return StressModel.from_pretrained(name)


def load_model(name: str | Path | None = None) -> StressModel:
    """The model at `name` (folder or Hub id; default: default_model_name()), loaded once per process."""
    name = str(name) if name is not None else default_model_name()
    if name == str(DEFAULT_MODEL_DIR) and not DEFAULT_MODEL_DIR.is_dir():
        raise FileNotFoundError(f"the bundled default model is missing at {DEFAULT_MODEL_DIR}; "
                                "train it with `python -m training.train --config training/configs/default.toml` "
                                "or pass a model folder or Hub id")
    return _cached(name)
