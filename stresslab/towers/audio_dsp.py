"""The frame features audio.py uses (MFCC, RMS, YIN pitch, zero-crossing rate, deltas), in numpy alone.

They are librosa 0.11's functions with the settings audio.py gives them (centred frames, Hann window, slaney
mel filters, DCT-II ortho, Savitzky-Golay deltas in "interp" mode), computed the same way step by step, because
the shipped models were trained on librosa's numbers. librosa itself costs a new process seconds before its first
feature (it imports scipy.signal, scipy.stats and numba, then loads its compiled functions from numba's cache);
these take milliseconds to import. tests/test_audio_dsp.py checks them against librosa on real clips.
Where librosa computes in float32 (the YIN autocorrelation, the DCT, the delta edge fits) these compute in float64
and round, so values agree to float32 rounding (under 1e-6 of each feature's range), not bit for bit.
The cached tables (window, filters, DCT and filter weights) are returned read-only.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def frames(y: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(N,) -> (length, 1 + (N - length) // hop) strided view, column t = y[t * hop : t * hop + length]."""
    if y.shape[-1] < length:
        raise ValueError(f"a signal of {y.shape[-1]} samples is shorter than one {length}-sample frame")
    n = 1 + (y.shape[-1] - length) // hop
    return np.lib.stride_tricks.as_strided(y, shape=(length, n), strides=(y.strides[-1], hop * y.strides[-1]),
                                           writeable=False)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check(y: np.ndarray) -> None:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"audio must be a 1-D float array, got {y.dtype} {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("the audio holds NaN or infinite samples")


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """(n,) float64 periodic Hann window, as scipy.signal.get_window("hann", n) computes it."""
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return _frozen(w[:-1])


def _hz_to_mel(f: float) -> float:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    if f >= 1000.0:
        return 1000.0 / (200.0 / 3) + np.log(f / 1000.0) / (np.log(6.4) / 27.0)
    return f / (200.0 / 3)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    """(n,) mels -> (n,) Hz, the inverse of _hz_to_mel."""
    hz = (200.0 / 3) * m
    log = m >= 1000.0 / (200.0 / 3)
    hz[log] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (m[log] - 1000.0 / (200.0 / 3)))
    return hz


@functools.lru_cache(maxsize=8)
def mel_filters(sr: float, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 slaney-normalised triangular filters from 0 Hz to sr / 2 (librosa.filters.mel
    with its defaults)."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sr) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return _frozen(weights)


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 orthonormal DCT-II rows."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return _frozen(m)


def power_spectrogram(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(N,) float32 -> (1 + n_fft // 2, 1 + N // hop) float32 |STFT|^2: zero-padded centred frames, Hann window."""
    _check(y)
    padded = np.pad(y, n_fft // 2, mode="constant")
    windowed = _hann(n_fft)[:, None] * frames(padded, n_fft, hop)  # float64, as librosa multiplies
    stft = np.zeros((1 + n_fft // 2, windowed.shape[1]), dtype=np.complex64, order="F")
    stft[:] = np.fft.rfft(windowed, axis=0)
    return np.abs(stft) ** 2


def mfcc(y: np.ndarray, sr: int, n_mfcc: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """(N,) float32 -> (n_mfcc, 1 + N // hop) float32 MFCC: slaney mel power, dB (top 80 dB), DCT-II ortho."""
    mel = np.einsum("...ft,mf->...mt", power_spectrogram(y, n_fft, hop), mel_filters(sr, n_fft, n_mels),
                    optimize=True)
    db = 10.0 * np.log10(np.maximum(1e-10, mel))  # reference power 1.0
    db = np.maximum(db, db.max() - 80.0)
    return (_dct_matrix(n_mels, n_mfcc) @ db.astype(np.float64)).astype(np.float32)


def rms(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """(N,) float32 -> (1, 1 + N // hop) float32 root mean square of zero-padded centred frames."""
    _check(y)
    x = frames(np.pad(y, frame_length // 2, mode="constant"), frame_length, hop)
    return np.sqrt(np.mean(np.square(x, dtype=np.float32), axis=-2, keepdims=True))


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop: int, threshold: float = 1e-10) -> np.ndarray:
    """(N,) float -> (1, 1 + N // hop) float64 share of sign changes within each edge-padded centred frame
    (samples within +-threshold count as zero, zero as positive)."""
    _check(y)
    padded = np.pad(y, frame_length // 2, mode="edge")
    sign = np.signbit(np.where(np.abs(padded) <= padded.dtype.type(threshold), 0, padded))
    change = np.concatenate([[0], np.cumsum(sign[1:] != sign[:-1], dtype=np.int64)])  # change[j]: crossings <= j
    starts = np.arange(0, padded.size - frame_length + 1, hop)
    return ((change[starts + frame_length - 1] - change[starts]) / frame_length)[None]


def _next_fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: the FFT length scipy.fft.next_fast_len(n, real=True) gives librosa."""
    best = 1
    while best < n:
        best *= 2
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            f = f35
            while f < n:
                f *= 2
            best, f35 = min(best, f), f35 * 3
        f5 *= 5
    return best


def yin(y: np.ndarray, fmin: float, fmax: float, sr: int, frame_length: int, hop: int,
        trough_threshold: float = 0.1) -> np.ndarray:
    """(N,) float32 -> (1 + N // hop,) float64 F0 in Hz by YIN on zero-padded centred frames (librosa.yin)."""
    _check(y)
    if not 0 < fmin < fmax <= sr / 2 or sr / fmin >= frame_length - 1:
        raise ValueError(f"YIN needs 0 < fmin < fmax <= sr / 2 and sr / fmin < frame_length - 1: fmin={fmin}, "
                         f"fmax={fmax}, sr={sr}, frame_length={frame_length}")
    y_frames = frames(np.pad(y, frame_length // 2, mode="constant"), frame_length, hop)
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    # cumulative mean normalised difference function; the autocorrelation through a real FFT
    n_pad = _next_fast_len(2 * frame_length - 1)
    spec = np.fft.rfft(y_frames, n=n_pad, axis=0)
    acf = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=n_pad, axis=0)[: max_period + 1].astype(y.dtype)
    d = np.square(y_frames)
    np.cumsum(d, out=d, axis=0)
    d[0] = 0
    d[1: max_period + 1] = 2 * (acf[0:1] - acf[1: max_period + 1]) - d[:max_period]
    numerator = d[min_period: max_period + 1]
    cumulative_mean = np.cumsum(d[1: max_period + 1], axis=0) / np.arange(1, max_period + 1)[:, None]
    denominator = cumulative_mean[min_period - 1: max_period]
    d = numerator / (denominator + np.finfo(denominator.dtype).tiny)
    # parabolic interpolation of each bin against its neighbours (0 at the ends, or when it would move > 1 bin)
    shifts = np.zeros_like(d)
    a = d[2:] + d[:-2] - 2 * d[1:-1]
    b = (d[2:] - d[:-2]) / 2
    inside = np.abs(b) < np.abs(a)
    shifts[1:-1][inside] = -b[inside] / a[inside]
    # the first local minimum below the threshold, else the global minimum
    trough = np.zeros(d.shape, dtype=bool)
    trough[1:-1] = (d[1:-1] < d[:-2]) & (d[1:-1] <= d[2:])
    trough[-1] = d[-1] < d[-2]
    trough[0] = d[0] < d[1]
    below = trough & (d < trough_threshold)
    period = np.argmax(below, axis=0)[None]
    none = ~below.any(axis=0, keepdims=True)
    period[none] = np.argmin(d, axis=0)[None][none]
    period = (min_period + period + np.take_along_axis(shifts, period, axis=0))[0]
    return sr / period


@functools.lru_cache(maxsize=16)
def _savgol_coeffs(width: int, order: int) -> np.ndarray:
    """(width,) float64 Savitzky-Golay convolution weights of the order-th derivative, polynomial order `order`."""
    half = width // 2
    x = np.arange(-half, width - half, dtype=np.float64)[::-1]
    a = x ** np.arange(order + 1, dtype=np.float64)[:, None]
    rhs = np.zeros(order + 1)
    rhs[order] = float(math.factorial(order))
    return _frozen(np.linalg.lstsq(a, rhs, rcond=np.finfo(np.float64).eps * max(a.shape))[0])


def _edge_fit(x: np.ndarray, order: int, at: np.ndarray) -> np.ndarray:
    """(R, W) rows -> (R, len(at)) float64: the order-th derivative, at positions `at`, of the least-squares
    polynomial of degree `order` through each row (at 0..W-1), as scipy's savgol "interp" edges fit it."""
    w = x.shape[1]
    t = np.arange(w, dtype=np.float64)
    lhs = t[:, None] ** np.arange(order, -1, -1, dtype=np.float64)[None, :]
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    coef = np.linalg.lstsq(lhs / scale, x.T.astype(np.float64), rcond=w * np.finfo(x.dtype).eps)[0]
    coef = (coef.T / scale).T  # (order + 1, R), highest power first
    for _ in range(order):  # differentiate `order` times
        coef = coef[:-1] * np.arange(coef.shape[0] - 1, 0, -1, dtype=np.float64)[:, None]
    return np.polyval(coef, at[:, None]).T


def delta(x: np.ndarray, width: int, order: int) -> np.ndarray:
    """(R, T) -> (R, T) same dtype: the order-th derivative along time by a Savitzky-Golay filter of odd width
    (polynomial order = order), edges from a polynomial fit (librosa.feature.delta, mode "interp")."""
    if x.ndim != 2:
        raise ValueError(f"delta takes (rows, frames), got shape {x.shape}")
    if width < 3 or width % 2 != 1 or width > x.shape[1]:
        raise ValueError(f"delta width must be odd, >= 3 and <= the {x.shape[1]} frames, got {width}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    c = _savgol_coeffs(width, order)[::-1]  # convolution -> correlation weights
    t, half = x.shape[1], width // 2
    x64 = x.astype(np.float64)
    inner = np.zeros((x.shape[0], t - width + 1), dtype=np.float64)
    for j in range(width):
        inner += c[j] * x64[:, j: j + t - width + 1]
    out = np.empty_like(x)
    out[:, half: t - half] = inner
    out[:, :half] = _edge_fit(x[:, :width], order, np.arange(half, dtype=np.float64))
    out[:, t - half:] = _edge_fit(x[:, t - width:], order, np.arange(width - half, width, dtype=np.float64))
    return out
