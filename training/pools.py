"""The data each stage draws from: the speech and text sets, the pools of label-matched pairings, the real
multimodal clips, and the corrections of the feedback stage.

Fusion has almost no real multimodal data, so it learns from pairings: a face, a voice and a sentence of the same
emotion from different corpora (Pools), plus the real CREMA-D clips (real_clips).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from stresslab.labels import EMOTIONS, MODALITIES
from stresslab.model import StressModel
from stresslab.towers.video_net import to_tensor
from training import data as D
from training.clip_folder import read_clip_folder
from training.config import TrainConfig
from training.features import audio_arrays, audio_batch, face_arrays, split_features
from training.loop import device_of

if TYPE_CHECKING:
    from stresslab.inputs import TowerInputs



def cache_dir(cfg: TrainConfig) -> Path:
    """Where the feature caches live: beside the run, shared by the runs in the same folder."""
    return Path(cfg.out).parent / "cache"


def audio_sets(model: StressModel, cfg: TrainConfig) -> dict[str, list[tuple[str, dict]]]:
    """The speech corpora split by speaker: {part: [(corpus, audio_arrays)]}; training parts speed-perturbed."""
    parts: dict[str, list] = {}
    for corpus in cfg.audio.corpora:
        folder = Path(cfg.data) / corpus
        if not folder.exists():
            continue
        for part, recs in D.default_split(read_clip_folder(folder), corpus).items():
            recs = [r for r in recs if r.get("audio")]
            if recs:
                speeds = tuple(cfg.audio.speeds) if part == "train" else (1.0,)
                augment = cfg.audio.augment if part == "train" else 0
                parts.setdefault(part, []).append((corpus, audio_arrays(
                    recs, model.config, f"{corpus}-{part}", cache_dir(cfg), speeds, augment, cfg.seed)))
    return parts


def pooled(sets: list[tuple[str, dict]]) -> tuple[list[np.ndarray], np.ndarray]:
    """audio_sets' entries as one list of (T_i, F) features and their (N,) labels."""
    return [f for _, d in sets for f in split_features(d)], np.concatenate([d["y"] for _, d in sets])


def text_sets(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """GoEmotions train: (the training sentences, the 5% held out to select the epoch)."""
    recs = [r for r in read_clip_folder(Path(cfg.data) / "goemotions") if r["split"] == "train"]
    return D.holdout(recs, 0.05)


def fer_sets(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """FER2013 train: (the training images, the 10% held out to select the epoch)."""
    fer = read_clip_folder(Path(cfg.data) / "fer2013")
    return D.holdout([r for r in fer if r["split"] == "train"], 0.1)


class Pools:
    """Per modality and class, what a pairing can draw: raw inputs (faces, audio features, sentences)."""

    def __init__(self, model: StressModel, cfg: TrainConfig, part: str):
        rng = np.random.default_rng(cfg.seed + 1)
        train, select = fer_sets(cfg)
        face_recs = train if part == "train" else select
        face_recs = [face_recs[i] for i in D.balanced_indices(D.labels_of(face_recs), 1500, rng)]
        faces = face_arrays(face_recs, model.config, f"fer-pool-{part}", cache_dir(cfg))
        sets = [d for _, d in audio_sets(model, cfg)[part]]
        text_train, text_select = text_sets(cfg)
        texts = text_train if part == "train" else text_select
        texts = [texts[i] for i in D.balanced_indices(D.labels_of(texts), 1500, rng)]
        self.raw = {"video": faces["x"], "audio": [f for d in sets for f in split_features(d)],
                    "text": [r["text"] for r in texts]}
        self.y = {"video": faces["y"], "audio": np.concatenate([d["y"] for d in sets]), "text": D.labels_of(texts)}
        self.by_class = {m: [np.flatnonzero(self.y[m] == c) for c in range(len(EMOTIONS))] for m in MODALITIES}
        self.emb: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(self, model: StressModel) -> None:
        """Embeddings of every pooled input by the (frozen) towers: the fusion stage trains on these."""
        model.eval()
        self.emb = {m: torch.cat([self.tower(model, m, np.arange(i, min(i + 256, len(self.y[m]))))
                                  for i in range(0, len(self.y[m]), 256)]) for m in MODALITIES}

    def tower(self, model: StressModel, m: str, idx: np.ndarray) -> torch.Tensor:
        """(len(idx), D): modality m's tower over the pooled inputs idx (with gradients, in the joint stage)."""
        if m == "video":
            return model.video.embed_frames(to_tensor(self.raw["video"][idx], model.config.video).to(device_of(model)))
        if m == "audio":
            x, n = audio_batch([self.raw["audio"][i] for i in idx], model.config.audio.n_features)
            return model.audio(x.to(device_of(model)), n.to(device_of(model)))
        return model.text([self.raw["text"][i] for i in idx])

    def towers(self, model: StressModel, idx: dict[str, np.ndarray], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """{modality: (B, D)}: each present row's pooled input through its tower; absent rows are zeros."""
        out = {}
        for j, m in enumerate(MODALITIES):
            rows = np.flatnonzero(mask[:, j].numpy())
            e = torch.zeros(len(mask), model.config.embed_dim, device=device_of(model))
            if len(rows):
                e = e.index_put((torch.from_numpy(rows).to(e.device),), self.tower(model, m, idx[m][rows]))
            out[m] = e
        return out

    def sample(self, n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, dict, torch.Tensor]:
        """n pairings: classes uniform; per modality an input of that class, present with probability p.
        Returns (y (n,), {modality: (n,) pool indices, -1 where the pool has no such class}, (n, 3) bool mask)."""
        y = rng.integers(0, len(EMOTIONS), n)
        idx = {m: np.array([rng.choice(self.by_class[m][c]) if len(self.by_class[m][c]) else -1 for c in y])
               for m in MODALITIES}
        mask = rng.random((n, len(MODALITIES))) < p
        for j, m in enumerate(MODALITIES):
            mask[:, j] &= idx[m] >= 0
        empty = ~mask.any(1)
        for i in np.flatnonzero(empty):
            options = [j for j, m in enumerate(MODALITIES) if idx[m][i] >= 0]
            mask[i, rng.choice(options)] = True
        return y, idx, torch.from_numpy(mask)


def embed_inputs(model: StressModel, inputs: TowerInputs, text: str | None) -> dict[str, torch.Tensor | None]:
    """One clip's (D,) embedding per modality by the model's towers (None where absent), on the model's device and
    with gradients where enabled: the video tower's mean over the face crops, the audio tower over the clip's one
    window, the text tower over the words. inputs: tower_inputs(clip, model.config) with windows=None."""
    if len(inputs.windows) != 1:
        raise ValueError(f"expected the whole clip as one window (tower_inputs with windows=None), "
                         f"got {len(inputs.windows)} windows")
    dev = device_of(model)
    out: dict[str, torch.Tensor | None] = dict.fromkeys(MODALITIES)
    if inputs.crops is not None:
        out["video"] = model.video.embed_frames(torch.from_numpy(inputs.crops).to(dev)).mean(0)
    if inputs.audio_rows:
        x, n = audio_batch(inputs.audio_feats, model.config.audio.n_features)
        out["audio"] = model.audio(x.to(dev), n.to(dev))[0]
    if text:
        out["text"] = model.text([text])[0]
    return out


@torch.no_grad()
def real_clips(model: StressModel, cfg: TrainConfig, part: str) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """The real multimodal CREMA-D clips of a part through stresslab.inputs.tower_inputs and the (frozen) towers:
    ({modality: (N, D)}, (N, 3) bool mask, (N,) labels)."""
    from stresslab.clip import load_clip
    from stresslab.inputs import tower_inputs
    from stresslab.towers.video import FaceDetector

    folder = Path(cfg.data) / "cremad"
    if not folder.exists():
        return {}, torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
    recs = D.default_split(read_clip_folder(folder), "cremad").get(part, [])
    model.eval()
    detector, rows = FaceDetector(model.config.video), []
    for r in recs:
        clip = load_clip(r["video"] or r["audio"], text=r["text"])
        rows.append(embed_inputs(model, tower_inputs(clip, model.config, detector=detector), clip.text))
    zero = torch.zeros(model.config.embed_dim, device=device_of(model))
    emb = {m: torch.stack([e[m] if e[m] is not None else zero for e in rows]) if rows
           else torch.zeros(0, model.config.embed_dim, device=device_of(model)) for m in MODALITIES}
    mask = torch.tensor([[e[m] is not None for m in MODALITIES] for e in rows], dtype=torch.bool).reshape(-1, 3)
    return emb, mask, torch.from_numpy(D.labels_of(recs))


def feedback_inputs(model: StressModel, folder: str) -> tuple[list[dict], str]:
    """Each usable correction of a clip folder (`training.prepare feedback`) as tower inputs through
    training.finetune_data.to_usable (the whole clip as one window) and its words; y the emotion id (-1: none
    given), stress the rating mapped to [0, 1] (-1: not rated), soft the annotators' distribution over the six
    emotions when the record has one (extra.soft_label), else None. -> (items, one line on the skipped ones):
    a correction with no emotion and no rating, an unreadable file or no usable modality is skipped, never fatal."""
    from collections import Counter

    from training import finetune_data as FD

    skipped: Counter = Counter()
    usable = FD.to_usable(FD.from_clip_folder(Path(folder)), model.config, skipped, progress=False, stress_only=True)
    items = [{"inputs": u.inputs, "text": u.text, "y": u.y, "stress": u.stress, "soft": u.soft} for u in usable]
    return items, FD.Prepared(usable, skipped, "clip folder").skipped_line()
