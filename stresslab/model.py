"""StressModel: three towers (video, audio, text), a head per tower, attention fusion, a fused head, and
optionally a learned stress head; its config, and the checkpoint format.

Checkpoint = a folder (or a Hub model repo) holding
  config.json        ModelConfig as JSON (architecture, label names, backbone configs, feature settings, version)
  model.safetensors  the weights (never pickle)
  tokenizer/         the text tokenizer's files
  README.md          the model card
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
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


@dataclass
class ModelConfig:
    """Everything needed to rebuild a StressModel without its weights."""

    emotions: list[str] = field(default_factory=lambda: list(EMOTIONS))
    embed_dim: int = 128
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)
    stress_head: bool = False  # True once a stress head was trained on rated corrections
    name: str = "stresslab"
    version: str = "0.1.0"

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Rebuild from config.json's contents; unknown keys are an error (a newer format)."""
        d = dict(d)
        if d.pop("format", FORMAT) != FORMAT or d.pop("format_version", 1) > FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} config; upgrade stresslab to read it")
        sub = {"video": VideoConfig, "audio": AudioConfig, "text": TextConfig}
        for key, kind in sub.items():
            if key in d:
                d[key] = _dataclass_from(kind, d[key])
        return _dataclass_from(cls, d)


def _dataclass_from(kind, d: dict):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown keys {sorted(unknown)}")
    return kind(**d)


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
        """Load a checkpoint from a local folder or a Hugging Face model repo id, in eval mode on the CPU."""
        folder = Path(name).expanduser()
        if not folder.is_dir():
            if Path(name).suffix or str(name).startswith((".", "/", "~")):
                raise FileNotFoundError(f"no checkpoint folder at {name}")
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(name), revision=revision, token=token,
                                            allow_patterns=["config.json", "model.safetensors", "tokenizer/*",
                                                            "README.md"]))
        for needed in ("config.json", "model.safetensors", "tokenizer"):
            if not (folder / needed).exists():
                raise FileNotFoundError(f"{folder} is not a stresslab checkpoint: {needed} is missing")
        config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
        text = TextEncoder.from_folder(config.text, config.embed_dim, folder / "tokenizer")
        model = cls(config, text)
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        model.source = str(name)
        return model.eval()

    def push_to_hub(self, repo_id: str, token: str | None = None, private: bool = True,
                    model_card: str | None = None, commit_message: str = "Upload stresslab model") -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, model_card=model_card)
            return str(api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message))


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
