"""Waveform augmentation that imitates real recordings: background noise at 5-20 dB SNR, room reverberation,
band-limiting (low-pass), lossy codecs (mp3, opus through PyAV), speed and pitch changes, and gain.

Every function takes and returns a (N,) float32 waveform at `sr` (16 kHz in this project) and draws its randomness
from the numpy Generator it is given, so a seeded run is reproducible. `augment()` chains a random subset.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import librosa
import numpy as np
from scipy import signal


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """(n,) noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (x / _rms(x)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, noise: np.ndarray | None = None
              ) -> np.ndarray:
    """Mix noise at snr_db relative to the wave's RMS: `noise` (e.g. other people's speech, looped) or colored."""
    if noise is None:
        noise = colored_noise(wave.size, rng, float(rng.uniform(0.0, 2.0)))
    else:
        noise = np.resize(np.roll(noise, int(rng.integers(noise.size))), wave.size)
    scale = _rms(wave) / _rms(noise) * 10 ** (-snr_db / 20)
    return (wave + scale * noise).astype(np.float32)


def reverb(wave: np.ndarray, rt60: float, rng: np.random.Generator, sr: int = 16_000) -> np.ndarray:
    """Convolve with a synthetic room impulse response: direct path + exponentially decaying noise (RT60 s)."""
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir[: int(0.002 * sr)] = 0.0  # first reflections after ~2 ms
    ir[0] = 1.0
    out = signal.fftconvolve(wave, ir)[: wave.size]
    return (out * _rms(wave) / _rms(out)).astype(np.float32)


def lowpass(wave: np.ndarray, cutoff_hz: float, sr: int = 16_000) -> np.ndarray:
    """8th-order Butterworth low-pass (telephone / cheap microphone band-limiting)."""
    sos = signal.butter(8, cutoff_hz, btype="low", fs=sr, output="sos")
    return signal.sosfilt(sos, wave).astype(np.float32)


def codec(wave: np.ndarray, name: str, bitrate: int, sr: int = 16_000) -> np.ndarray:
    """Encode with a lossy codec ('mp3' or 'opus', PyAV) at bitrate bit/s and decode back: (N,) float32."""
    codec_name, fmt, rate = {"mp3": ("libmp3lame", "mp3", sr), "opus": ("libopus", "ogg", 48_000)}[name]
    x = wave if rate == sr else librosa.resample(wave, orig_sr=sr, target_sr=rate, res_type="soxr_hq")
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec_name, rate=rate, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(np.clip(x, -1, 1)[None].astype(np.float32), format="flt",
                                           layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks = [o.to_ndarray().reshape(-1) for f in inp.decode(audio=0) for o in resampler.resample(f)]
        chunks += [o.to_ndarray().reshape(-1) for o in resampler.resample(None)]
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    y = np.pad(y, (0, max(0, wave.size - y.size)))[: wave.size]  # codec delay/padding: keep the length
    return y.astype(np.float32)


def speed(wave: np.ndarray, factor: float, sr: int = 16_000) -> np.ndarray:
    """Play factor times faster (tempo and pitch together), by resampling."""
    return librosa.resample(wave, orig_sr=sr, target_sr=int(round(sr / factor)), res_type="soxr_hq")


def pitch(wave: np.ndarray, semitones: float, sr: int = 16_000) -> np.ndarray:
    """Shift the pitch by semitones, keeping the duration."""
    return librosa.effects.pitch_shift(wave, sr=sr, n_steps=semitones, res_type="soxr_hq").astype(np.float32)


@dataclass
class AugmentConfig:
    """Probability of each step in augment() and its range."""

    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 20.0)
    p_reverb: float = 0.3
    rt60: tuple[float, float] = (0.2, 0.7)
    p_lowpass: float = 0.2
    cutoff_hz: tuple[float, float] = (3000.0, 6000.0)
    p_codec: float = 0.3
    p_speed: float = 0.3
    speeds: tuple[float, float] = (0.9, 1.1)
    p_pitch: float = 0.0  # librosa's phase vocoder is slow (~0.1 s a clip): off unless asked
    semitones: tuple[float, float] = (-2.0, 2.0)
    gain_db: tuple[float, float] = (-20.0, 6.0)


def augment(wave: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None,
            noises: list[np.ndarray] | None = None, sr: int = 16_000) -> np.ndarray:
    """A random chain of the steps above (each with its probability), then a random gain: (N,) -> (N',) float32.
    noises: optional background recordings (e.g. other speakers' clips for babble) drawn from for add_noise."""
    c = config or AugmentConfig()
    x = np.asarray(wave, np.float32)
    if rng.random() < c.p_speed:
        x = speed(x, float(rng.uniform(*c.speeds)), sr)
    if rng.random() < c.p_pitch:
        x = pitch(x, float(rng.uniform(*c.semitones)), sr)
    if rng.random() < c.p_reverb:
        x = reverb(x, float(rng.uniform(*c.rt60)), rng, sr)
    if rng.random() < c.p_noise:
        bg = noises[int(rng.integers(len(noises)))] if noises and rng.random() < 0.5 else None
        x = add_noise(x, float(rng.uniform(*c.snr_db)), rng, bg)
    if rng.random() < c.p_lowpass:
        x = lowpass(x, float(rng.uniform(*c.cutoff_hz)), sr)
    if rng.random() < c.p_codec:
        name = "mp3" if rng.random() < 0.5 else "opus"
        x = codec(x, name, int(rng.choice([16_000, 24_000, 32_000, 48_000])), sr)
    x = x * 10 ** (float(rng.uniform(*c.gain_db)) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
