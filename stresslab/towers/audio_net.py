"""The audio network: frame features (B, T, F) -> (B, D) (a dilated 1-D CNN, mean + std pooled over time), with
an optional pretrained speech encoder. The features themselves come from audio.py (torch-free)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .audio import AudioConfig


class AudioEncoder(nn.Module):
    """Frame features -> (B, D). forward(feats (B, T, F), lengths (B,), wave (B, N) optional)."""

    def __init__(self, config: AudioConfig, embed_dim: int):
        super().__init__()
        self.config = config
        f, c = config.n_features, config.channels
        self.register_buffer("feature_mean", torch.zeros(f))
        self.register_buffer("feature_std", torch.ones(f))
        self.conv = nn.ModuleList([
            nn.Sequential(nn.Conv1d(f, c, 5, padding=2), nn.BatchNorm1d(c), nn.ReLU()),
            nn.Sequential(nn.Conv1d(c, c, 3, padding=2, dilation=2), nn.BatchNorm1d(c), nn.ReLU()),
            nn.Sequential(nn.Conv1d(c, c, 3, padding=3, dilation=3), nn.BatchNorm1d(c), nn.ReLU()),
        ])
        self.speech = None
        extra = 0
        if config.pretrained_id or config.pretrained_config:
            self.speech = _speech_model(config)
            extra = self.speech.config.hidden_size
        self.proj = nn.Sequential(nn.Dropout(0.3), nn.Linear(2 * c + extra, embed_dim), nn.GELU())

    def fit_normalizer(self, feats: list[np.ndarray]) -> None:
        """Set the feature mean/std from a list of (T, F) training feature arrays."""
        allf = np.concatenate(feats)
        self.feature_mean.copy_(torch.from_numpy(allf.mean(0)))
        self.feature_std.copy_(torch.from_numpy(allf.std(0) + 1e-4))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, wave: torch.Tensor | None = None) -> torch.Tensor:
        """feats (B, T, F) padded, lengths (B,) frames -> (B, D). wave (B, N) only with a pretrained encoder."""
        x = ((feats - self.feature_mean) / self.feature_std).transpose(1, 2)  # (B, F, T)
        mask = (torch.arange(x.shape[2], device=x.device)[None] < lengths[:, None]).unsqueeze(1).to(x.dtype)
        h = x * mask
        for block in self.conv:  # re-zero the padding after each block: a padded clip = the clip alone
            h = block(h) * mask
        n = mask.sum(2).clamp_min(1.0)
        mean = (h * mask).sum(2) / n
        std = (((h - mean.unsqueeze(2)) ** 2 * mask).sum(2) / n).clamp_min(1e-6).sqrt()
        pooled = [mean, std]
        if self.speech is not None:
            if wave is None:
                raise ValueError("this audio encoder has a pretrained speech model: pass the waveform too")
            pooled.append(self.speech(wave).last_hidden_state.mean(1))
        return self.proj(torch.cat(pooled, 1))


def _speech_model(config: AudioConfig) -> nn.Module:
    """The optional pretrained speech encoder: from the stored config (checkpoint) or the Hub id (training)."""
    from transformers import AutoConfig, AutoModel

    if config.pretrained_config is not None:
        cfg = dict(config.pretrained_config)
        return AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    model = AutoModel.from_pretrained(config.pretrained_id)
    config.pretrained_config = model.config.to_dict()
    return model
