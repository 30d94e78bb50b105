"""The numpy frame features (towers/audio_dsp.py) against librosa 0.11, which the shipped models were trained on:
each function, and the whole audio_features matrix against the librosa pipeline it replaced, on real speech
(the bundled CREMA-D examples, EmoDB and RAVDESS clips) and on edge cases (silence, under one frame, a pure tone)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import EMODB, SHARED

from stresslab.clip import load_clip
from stresslab.towers import audio_dsp
from stresslab.towers.audio import AudioConfig, audio_features, normalize_loudness

librosa = pytest.importorskip("librosa")
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
RAVDESS = SHARED / "ravdess-speech"
SR, HOP, N_FFT = 16_000, 160, 400


def _close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-5) -> None:
    """Same shape and dtype, and equal to `rel` of the reference's largest magnitude (float32 rounding)."""
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ref.shape, ours.dtype, ref.dtype)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * max(float(np.abs(ref).max()), 1e-6))


def _librosa_features(wave: np.ndarray, config: AudioConfig) -> np.ndarray:
    """audio_features as it was computed with librosa (the reference the numpy version must reproduce)."""
    wave = np.asarray(wave, dtype=np.float32)
    if config.target_loudness_db is not None:
        wave = normalize_loudness(wave, config.target_loudness_db, config.sample_rate)
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
    voiced = ((rms > 0.05 * rms.max()) & (zcr < 0.3)).astype(np.float32)
    log_f0 = np.log(f0) * voiced
    width = min(9, t if t % 2 else t - 1)
    deltas = [np.zeros_like(x) if width < 3 else librosa.feature.delta(x, width=width, order=o)
              for x, o in ((mfcc, 1), (mfcc, 2), (log_e, 1), (log_f0, 1))]
    if config.utterance_norm:
        mfcc, log_e = mfcc - mfcc.mean(1, keepdims=True), log_e - log_e.max()
    feats = np.concatenate([mfcc, deltas[0], deltas[1], log_e, deltas[2], log_f0, deltas[3], voiced])
    return np.ascontiguousarray(feats.T, dtype=np.float32)


def _check_matrix(wave: np.ndarray) -> None:
    """audio_features equals the librosa pipeline column by column, for the old and the newer feature switches."""
    for config in (AudioConfig(), AudioConfig(target_loudness_db=-23.0, utterance_norm=True)):
        ours, ref = audio_features(wave, config), _librosa_features(wave, config)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        # each column against the range of what it is computed from: every MFCC (and delta) against the largest
        # MFCC before any utterance normalisation (a DCT's rounding scales with its whole input), a delta against
        # what it differentiates
        n, top = config.n_mfcc, np.abs(_librosa_features(wave, replace(config, utterance_norm=False))).max(0)
        scale = np.maximum(np.r_[np.full(3 * n, top[:n].max()), top[3 * n], top[3 * n], top[3 * n + 2],
                                 top[3 * n + 2], top[3 * n + 4]], 1.0)
        worst = float((np.abs(ours.astype(np.float64) - ref) / scale).max())
        assert worst < 1e-5, f"{worst:.2g} of a feature's range"
        assert np.array_equal(ours[:, -1], ref[:, -1])  # the voicing flags


def _examples() -> list[np.ndarray]:
    return [load_clip(p).audio for p in sorted(EXAMPLES.glob("1001_*.flv"))[:3] + sorted(EXAMPLES.glob("*.mp3"))[:3]]


def test_each_function_equals_librosa_on_real_speech():
    for y in _examples():
        assert y is not None and y.dtype == np.float32
        _close(audio_dsp.power_spectrogram(y, N_FFT, HOP), np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2,
               rel=1e-6)
        _close(audio_dsp.mfcc(y, SR, 20, N_FFT, HOP, 40),
               librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20, n_fft=N_FFT, hop_length=HOP, n_mels=40), rel=1e-6)
        _close(audio_dsp.rms(y, N_FFT, HOP), librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP), rel=1e-6)
        np.testing.assert_array_equal(audio_dsp.zero_crossing_rate(y, N_FFT, HOP),
                                      librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP))
        f0 = librosa.yin(y, fmin=65.0, fmax=500.0, sr=SR, frame_length=1024, hop_length=HOP)
        ours = audio_dsp.yin(y, 65.0, 500.0, SR, 1024, HOP)
        assert ours.shape == f0.shape and ours.dtype == f0.dtype
        np.testing.assert_allclose(ours, f0, rtol=1e-5)  # no frame picks another period
        np.testing.assert_allclose(audio_dsp.yin(y, 80.0, 400.0, SR, 800, HOP),  # a 1600-point FFT, not 2^k
                                   librosa.yin(y, fmin=80.0, fmax=400.0, sr=SR, frame_length=800, hop_length=HOP),
                                   rtol=1e-5)
        mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20, n_fft=N_FFT, hop_length=HOP, n_mels=40)
        log_f0 = np.log(f0)[None]
        for width in (9, 5, 3):
            for order in (1, 2):
                _close(audio_dsp.delta(mfcc, width, order), librosa.feature.delta(mfcc, width=width, order=order))
            _close(audio_dsp.delta(log_f0, width, 1), librosa.feature.delta(log_f0, width=width, order=1), rel=1e-9)
    np.testing.assert_allclose(audio_dsp.mel_filters(SR, N_FFT, 40), librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40),
                               rtol=1e-6, atol=0)


def test_audio_features_equal_the_librosa_pipeline_on_the_bundled_examples():
    for wave in _examples():
        _check_matrix(wave)


def test_audio_features_equal_the_librosa_pipeline_on_emodb_and_ravdess():
    clips = sorted((EMODB / "wav").glob("*.wav"))[::97][:3] + sorted(RAVDESS.glob("Actor_*/*.flac"))[::211][:3]
    assert len(clips) == 6
    for path in clips:
        _check_matrix(load_clip(path).audio)


def test_audio_features_equal_the_librosa_pipeline_on_edge_cases():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    for wave in (np.zeros(SR, np.float32),  # digital silence: YIN's global-minimum branch everywhere
                 rng.normal(0, 0.1, 100).astype(np.float32),  # under one frame: padded, 3 frames, delta width 3
                 rng.normal(0, 0.1, 1000).astype(np.float32),  # 7 frames: delta width 7
                 (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32),  # a steady voiced tone
                 np.clip(rng.normal(0, 2, SR), -1, 1).astype(np.float32)):  # clipped noise
        _check_matrix(wave)


def test_fft_lengths_are_scipys():
    scipy_fft = pytest.importorskip("scipy.fft")
    assert [audio_dsp._next_fast_len(n) for n in range(1, 5000)] == [scipy_fft.next_fast_len(n, real=True)
                                                                     for n in range(1, 5000)]


def test_bad_audio_is_refused_in_one_line():
    with pytest.raises(ValueError, match="NaN or infinite"):
        audio_dsp.rms(np.array([0.0, np.nan] * 300, np.float32), N_FFT, HOP)
    with pytest.raises(ValueError, match="delta width"):
        audio_dsp.delta(np.zeros((2, 4), np.float32), 5, 1)
    with pytest.raises(ValueError, match="YIN needs"):
        audio_dsp.yin(np.zeros(SR, np.float32), 10.0, 500.0, SR, 1024, HOP)
