"""Audio branch: 16 kHz waveform -> frame features (MFCC, energy, pitch, voicing, deltas) -> AudioEncoder.

Features (librosa, 10 ms hop) per frame, F = 3 * n_mfcc + 5:
  MFCC (n_mfcc) and their first and second deltas; log RMS energy and its delta; log F0 (YIN, 0 where unvoiced)
  and its delta; a voicing flag. The encoder normalises them with statistics fitted on the training set
  (buffers stored in the checkpoint), runs a small dilated 1-D CNN, and pools mean and standard deviation over
  time (x-vector style), so clips of any length map to one (D,) embedding.
An optional pretrained speech encoder (a transformers model id in AudioConfig.pretrained_id, e.g. a wav2vec 2.0)
adds its time-averaged hidden state when configured.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
from torch import nn


@dataclass
class AudioConfig:
    """Feature extraction and the audio network."""

    sample_rate: int = 16_000
    n_mfcc: int = 20
    n_fft: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    fmin: float = 65.0  # F0 search range, Hz
    fmax: float = 500.0
    channels: int = 128
    silence_db: float = -50.0  # speech_detector "level": a clip whose loudest 100 ms is below this (dBFS) is silent
    # How speech is told from silence: "level" (the loudest 100 ms against silence_db; checkpoints before this
    # field) or "relative" (the loudest 100 ms at least speech_floor_db and contrast_db above the clip's own noise
    # floor, the 10th percentile of its 25 ms frames: quiet speech counts, steady noise or hum does not).
    speech_detector: str = "level"
    speech_floor_db: float = -70.0
    contrast_db: float = 6.0
    pretrained_id: str | None = None  # e.g. "facebook/wav2vec2-base"; None: features only
    pretrained_config: dict | None = None  # its transformers config, filled in when the checkpoint is saved

    @property
    def n_features(self) -> int:
        return 3 * self.n_mfcc + 5


def audio_features(wave: np.ndarray, config: AudioConfig | None = None) -> np.ndarray:
    """(N,) float32 at config.sample_rate -> (T, F) float32 frame features, T = 1 + N // hop_length."""
    config = config or AudioConfig()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.size < config.n_fft:
        wave = np.pad(wave, (0, config.n_fft - wave.size))
    sr, hop, n_fft = config.sample_rate, config.hop_length, config.n_fft
    mfcc = librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=config.n_mfcc, n_fft=n_fft, hop_length=hop, n_mels=40)
    rms = librosa.feature.rms(y=wave, frame_length=n_fft, hop_length=hop)
    log_e = np.log(rms + 1e-5)
    f0 = librosa.yin(wave, fmin=config.fmin, fmax=config.fmax, sr=sr, frame_length=1024, hop_length=hop)[None]
    zcr = librosa.feature.zero_crossing_rate(wave, frame_length=n_fft, hop_length=hop)
    t = min(mfcc.shape[1], rms.shape[1], f0.shape[1], zcr.shape[1])
    mfcc, log_e, f0, zcr, rms = mfcc[:, :t], log_e[:, :t], f0[:, :t], zcr[:, :t], rms[:, :t]
    voiced = ((rms > 0.05 * rms.max()) & (zcr < 0.3)).astype(np.float32)  # loud, not noise-like
    log_f0 = np.log(f0) * voiced
    width = min(9, t if t % 2 else t - 1)
    deltas = [np.zeros_like(x) if width < 3 else librosa.feature.delta(x, width=width, order=o)
              for x, o in ((mfcc, 1), (mfcc, 2), (log_e, 1), (log_f0, 1))]
    feats = np.concatenate([mfcc, deltas[0], deltas[1], log_e, deltas[2], log_f0, deltas[3], voiced])
    return np.ascontiguousarray(feats.T, dtype=np.float32)


def loudness_db(wave: np.ndarray, sample_rate: int = 16_000) -> float:
    """The loudest 100 ms of the clip, in dBFS (RMS); -inf for digital silence."""
    win = max(1, sample_rate // 10)
    if wave.size == 0:
        return float("-inf")
    n = wave.size // win * win
    frames = wave[:n].reshape(-1, win) if n else wave[None]
    peak = float(np.sqrt((frames.astype(np.float64) ** 2).mean(1)).max())
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def noise_floor_db(wave: np.ndarray, sample_rate: int = 16_000, percentile: float = 10.0) -> float:
    """The clip's noise floor: the given percentile of its 25 ms frame levels (10 ms hop), in dBFS (RMS)."""
    win, hop = max(1, sample_rate // 40), max(1, sample_rate // 100)
    if wave.size < win:
        return loudness_db(wave, sample_rate)
    frames = np.lib.stride_tricks.sliding_window_view(wave, win)[::hop].astype(np.float64)
    level = float(np.percentile(np.sqrt((frames ** 2).mean(1)), percentile))
    return 20 * np.log10(level) if level > 0 else float("-inf")


def is_silent(wave: np.ndarray | None, config: AudioConfig | None = None) -> bool:
    """True when there is no audio (or under 100 ms) or it holds no speech by config.speech_detector."""
    config = config or AudioConfig()
    if wave is None or wave.size < config.sample_rate // 10:
        return True
    peak = loudness_db(wave, config.sample_rate)
    if config.speech_detector == "level":
        return peak < config.silence_db
    if config.speech_detector == "relative":
        floor = noise_floor_db(wave, config.sample_rate)
        return peak < config.speech_floor_db or peak - floor < config.contrast_db
    raise ValueError(f"AudioConfig.speech_detector must be 'level' or 'relative', not {config.speech_detector!r}")


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
