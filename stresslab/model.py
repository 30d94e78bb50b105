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

import functools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .config import (  # noqa: F401 (ModelConfig & co. are part of this module's API too)
    DEFAULT_MODEL_DIR,
    FORMAT,
    FORMAT_VERSION,
    HUB_FILES,
    CheckpointError,
    ModelConfig,
    default_model_name,
    is_hub_id,
)
from .fusion import MODALITIES, AttentionFusion, FusionOutput
from .towers.audio_net import AudioEncoder
from .towers.text_net import TextEncoder
from .towers.video_net import VideoEncoder


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
            if not is_hub_id(name):
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
        model.folder = folder  # where it came from: push_to_hub carries the folder's replay set along
        return model

    def push_to_hub(self, repo_id: str, token: str | None = None, private: bool = True,
                    model_card: str | None = None, commit_message: str = "Upload stresslab model") -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the commit URL. A model loaded from a
        folder that holds a replay set (replay.safetensors, training.replay) takes it along, so `stresslab finetune`
        can rehearse it from the Hub too."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, model_card=model_card)
            source = getattr(self, "folder", None)
            if source is not None and (Path(source) / "replay.safetensors").is_file():
                shutil.copy2(Path(source) / "replay.safetensors", Path(tmp) / "replay.safetensors")
            return str(api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def _minimal_card(config: ModelConfig) -> str:
    return (f"---\nlibrary_name: stresslab\ntags: [emotion-recognition, multimodal]\n---\n# {config.name}\n\n"
            "A stresslab checkpoint (video, audio and text towers with attention fusion). "
            "No training details were recorded for it.\n")


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
