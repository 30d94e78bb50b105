"""The torch runtime: a StressModel (training's model class) behind the numpy Backend interface."""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..model import StressModel
from .base import Scores


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


class TorchBackend:
    """Backend over a StressModel in eval mode on the CPU (see runtime/base.py for the interface and shapes)."""

    def __init__(self, model: StressModel):
        self.model = model
        self.config = model.config
        self.source = getattr(model, "source", None)
        dtype = next(model.parameters()).dtype
        self.info = {"runtime": "torch", "precision": str(dtype).removeprefix("torch.")}
        self.uses_waveform = model.audio.speech is not None
        self._text_lock = threading.Lock()  # the fast tokenizer refuses two threads at once ("Already borrowed")

    @torch.inference_mode()
    def embed_frames(self, crops: np.ndarray) -> np.ndarray:
        return _np(self.model.video.embed_frames(torch.from_numpy(np.ascontiguousarray(crops, np.float32))))

    @torch.inference_mode()
    def embed_audio(self, feats: np.ndarray, lengths: np.ndarray, waves: np.ndarray | None = None) -> np.ndarray:
        wave = torch.from_numpy(waves) if waves is not None and self.uses_waveform else None
        return _np(self.model.audio(torch.from_numpy(feats), torch.from_numpy(lengths), wave))

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        with self._text_lock:
            return _np(self.model.text(list(texts)))

    @torch.inference_mode()
    def head(self, modality: str, emb: np.ndarray) -> np.ndarray:
        return _np(self.model.heads[modality](torch.from_numpy(emb)))

    @torch.inference_mode()
    def predict(self, emb: dict[str, np.ndarray], mask: np.ndarray) -> Scores:
        p = self.model.predict({m: torch.from_numpy(np.ascontiguousarray(e)) for m, e in emb.items()},
                               torch.from_numpy(mask))
        return Scores(_np(p.fused_logits), _np(p.weights), {m: _np(v) for m, v in p.modality_logits.items()},
                      _np(p.stress) if p.stress is not None else None)
