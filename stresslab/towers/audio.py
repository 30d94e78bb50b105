"""Audio branch: 16 kHz waveform -> frame features (MFCC, energy, pitch, voicing, deltas) -> AudioEncoder.

This file is torch-free (features, the speech decision); the network is in audio_net.py.

Features (10 ms hop; librosa 0.11's functions, computed in numpy by audio_dsp.py) per frame, F = 3 * n_mfcc + 5:
  MFCC (n_mfcc) and their first and second deltas; log RMS energy and its delta; log F0 (YIN, 0 where unvoiced)
  and its delta; a voicing flag. The encoder normalises them with statistics fitted on the training set
  (buffers stored in the checkpoint), runs a small dilated 1-D CNN, and pools mean and standard deviation over
  time (x-vector style), so clips of any length map to one (D,) embedding.
An optional pretrained speech encoder (a transformers model id in AudioConfig.pretrained_id, e.g. a wav2vec 2.0)
adds its time-averaged hidden state when configured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import audio_dsp


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
    # Feature pipeline switches (off for checkpoints made before them, which must keep their answers):
    target_loudness_db: float | None = None  # dBFS of the active frames (within 40 dB of the loudest) after scaling
    utterance_norm: bool = False  # MFCC minus their mean over the clip; log energy relative to its loudest frame
    pretrained_id: str | None = None  # e.g. "facebook/wav2vec2-base"; None: features only
    pretrained_config: dict | None = None  # its transformers config, filled in when the checkpoint is saved

    @property
    def n_features(self) -> int:
        return 3 * self.n_mfcc + 5


def audio_features(wave: np.ndarray, config: AudioConfig | None = None) -> np.ndarray:
    """(N,) float32 at config.sample_rate -> (T, F) float32 frame features, T = 1 + N // hop_length."""
    config = config or AudioConfig()
    wave = np.asarray(wave, dtype=np.float32)
    if config.target_loudness_db is not None:
        wave = normalize_loudness(wave, config.target_loudness_db, config.sample_rate)
    if wave.size < config.n_fft:
        wave = np.pad(wave, (0, config.n_fft - wave.size))
    sr, hop, n_fft = config.sample_rate, config.hop_length, config.n_fft
    mfcc = audio_dsp.mfcc(wave, sr, config.n_mfcc, n_fft, hop, n_mels=40)
    rms = audio_dsp.rms(wave, n_fft, hop)
    log_e = np.log(rms + 1e-5)
    f0 = audio_dsp.yin(wave, config.fmin, config.fmax, sr, frame_length=1024, hop=hop)[None]
    zcr = audio_dsp.zero_crossing_rate(wave, n_fft, hop)
    t = min(mfcc.shape[1], rms.shape[1], f0.shape[1], zcr.shape[1])
    mfcc, log_e, f0, zcr, rms = mfcc[:, :t], log_e[:, :t], f0[:, :t], zcr[:, :t], rms[:, :t]
    voiced = ((rms > 0.05 * rms.max()) & (zcr < 0.3)).astype(np.float32)  # loud, not noise-like
    log_f0 = np.log(f0) * voiced
    width = min(9, t if t % 2 else t - 1)
    deltas = [np.zeros_like(x) if width < 3 else audio_dsp.delta(x, width=width, order=o)
              for x, o in ((mfcc, 1), (mfcc, 2), (log_e, 1), (log_f0, 1))]
    if config.utterance_norm:  # what the microphone, the room gain and the speaker's vocal tract add is constant
        mfcc, log_e = mfcc - mfcc.mean(1, keepdims=True), log_e - log_e.max()
    feats = np.concatenate([mfcc, deltas[0], deltas[1], log_e, deltas[2], log_f0, deltas[3], voiced])
    return np.ascontiguousarray(feats.T, dtype=np.float32)


def _frame_power(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """(N,) -> mean power of each 25 ms frame (10 ms hop), from a running sum: O(N), no frame copies."""
    win, hop = max(1, sample_rate // 40), max(1, sample_rate // 100)
    energy = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    starts = np.arange(0, wave.size - win + 1, hop)
    return np.maximum(energy[starts + win] - energy[starts], 0.0) / win


def normalize_loudness(wave: np.ndarray, target_db: float, sample_rate: int = 16_000) -> np.ndarray:
    """(N,) -> (N,) scaled so that the RMS of its active 25 ms frames (within 40 dB of the loudest) is target_db
    dBFS, clipped to [-1, 1]; digital silence is returned unchanged."""
    if wave.size < max(1, sample_rate // 40) or not np.any(wave):
        return wave
    power = _frame_power(wave, sample_rate)
    active = power[power >= power.max() * 1e-4]
    gain = 10 ** (target_db / 20) / np.sqrt(active.mean())
    return np.clip(wave * gain, -1.0, 1.0).astype(np.float32)


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
    if wave.size < max(1, sample_rate // 40):
        return loudness_db(wave, sample_rate)
    level = float(np.percentile(np.sqrt(_frame_power(wave, sample_rate)), percentile))
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


def __getattr__(name: str):
    """The torch network (AudioEncoder) live in audio_net.py; importing them from here still works."""
    if name in ('AudioEncoder',):
        from . import audio_net

        return getattr(audio_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
