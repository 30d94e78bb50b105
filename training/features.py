"""Tower inputs of whole corpora, as numpy arrays cached on disk (runs/cache/*.npz make the second run fast).

They go through the product's one Clip -> tower-inputs step (stresslab.load_clip, then stresslab.inputs.
tower_inputs: the same face finder, crops, silence decision and audio features as analysis), so what the model
learns from is what it sees at run time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stresslab.labels import emotion_id

if TYPE_CHECKING:
    import torch

    from stresslab.config import ModelConfig


def _cached(name: str, cache: Path | None, build):
    if cache is not None and (cache / f"{name}.npz").exists():
        with np.load(cache / f"{name}.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    data = build()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{name}.npz", **data)
    return data


def face_arrays(records: list[dict], config: ModelConfig, name: str, cache: Path | None = None) -> dict:
    """{"x": (N, S, S) uint8 gray face crops, "y": (N,)}: the face stresslab.inputs.tower_inputs finds in each
    image, or in a video's middle frame; records where it finds none are left out. Cached as uint8 (a quarter of
    float32's size): tower_inputs' crops are uint8 / 127.5 - 1, so the round trip is exact."""

    def build():
        from stresslab.clip import load_clip
        from stresslab.inputs import tower_inputs
        from stresslab.towers.video import FaceDetector

        detector, xs, ys = FaceDetector(config.video), [], []
        for r in records:
            clip = load_clip(r.get("image") or r["video"])
            mid = slice(len(clip.frames) // 2, len(clip.frames) // 2 + 1)
            still = replace(clip, frames=clip.frames[mid], audio=None,
                            frame_times=None if clip.frame_times is None else clip.frame_times[mid])
            crops = tower_inputs(still, config, detector=detector).crops
            if crops is None:
                continue
            xs.append(np.rint((crops[0, 0] + 1.0) * 127.5).astype(np.uint8))
            ys.append(emotion_id(r["emotion"]))
        return {"x": np.stack(xs), "y": np.array(ys, dtype=np.int64)}

    return _cached(f"faces-{name}-{config.video.image_size}", cache, build)


def audio_arrays(records: list[dict], config: ModelConfig, name: str, cache: Path | None = None,
                 speeds: tuple[float, ...] = (1.0,), augment: int = 0, seed: int = 0) -> dict:
    """{"feats": (sum T, F) float32, "offsets": (N + 1,), "y": (N,), "speaker": (N,)}: the audio features
    stresslab.inputs.tower_inputs gives each clip, as one window (and speed-perturbed copies for each factor != 1:
    a standard augmentation for small speech corpora; and `augment` recording-like copies of each clip drawn by
    training.augment with a seeded generator). Clips it finds silent or too short are left out."""

    def build():
        import librosa

        from stresslab.clip import load_clip
        from stresslab.inputs import tower_inputs
        from training.augment import augment as recorded

        sr = config.audio.sample_rate
        rng = np.random.default_rng(seed)
        feats, offsets, ys, speakers = [], [0], [], []
        for r in records:
            clip = load_clip(r["audio"])
            sound = replace(clip, frames=None, frame_times=None)
            for speed in [*speeds, *["augment"] * augment]:
                heard = sound
                if speed != 1.0:
                    wave = recorded(clip.audio, rng, sr=sr) if speed == "augment" else \
                        librosa.resample(clip.audio, orig_sr=sr * speed, target_sr=sr)
                    heard = replace(sound, audio=wave, duration=len(wave) / sr)
                inputs = tower_inputs(heard, config)
                if not inputs.audio_rows:
                    continue
                f = inputs.audio_feats[0]
                feats.append(f)
                offsets.append(offsets[-1] + len(f))
                ys.append(emotion_id(r["emotion"]))
                speakers.append(r.get("speaker") or "")
        return {"feats": np.concatenate(feats), "offsets": np.array(offsets), "y": np.array(ys, dtype=np.int64),
                "speaker": np.array(speakers)}

    tag = "-".join(f"{s:g}" for s in speeds) + (f"-aug{augment}s{seed}" if augment else "")
    features = hashlib.sha1(json.dumps(asdict(config.audio), sort_keys=True).encode()).hexdigest()[:8]
    return _cached(f"audio-{name}-{tag}-{features}", cache, build)


def split_features(data: dict) -> list[np.ndarray]:
    """The (T_i, F) feature arrays of audio_arrays' concatenation."""
    o = data["offsets"]
    return [data["feats"][o[i]: o[i + 1]] for i in range(len(o) - 1)]


def audio_batch(feats: list[np.ndarray], n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, F) arrays -> ((B, T_max, F) zero-padded float batch, (B,) lengths): stresslab.inputs.pad_features."""
    import torch

    from stresslab.inputs import pad_features

    x, lengths = pad_features(feats, n_features)
    return torch.from_numpy(x), torch.from_numpy(lengths)
