"""The face network: (N, C, S, S) grayscale face crops -> (N, D) embeddings (transformers' ResNetModel, built from
the config stored in the checkpoint, or initialised from a Hub id such as "microsoft/resnet-18" in training).
Face finding and cropping live in video.py (torch-free)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import ResNetConfig, ResNetModel

from .video import Box, VideoConfig, face_crop_array, normalize_crops


def face_crops(frames: np.ndarray, boxes: list[Box | None], config: VideoConfig) -> tuple[torch.Tensor, list[int]]:
    """face_crop_array as a tensor: ((N, C, S, S) float in [-1, 1], indices of the frames with a box)."""
    crops, kept = face_crop_array(frames, boxes, config)
    return torch.from_numpy(crops), kept


def to_tensor(gray_crops: np.ndarray, config: VideoConfig) -> torch.Tensor:
    """(N, S, S) uint8 -> (N, C, S, S) float tensor in [-1, 1] (normalize_crops)."""
    return torch.from_numpy(normalize_crops(gray_crops, config))


class VideoEncoder(nn.Module):
    """Face crops -> embeddings. embed_frames: (N, C, S, S) -> (N, D), one per frame."""

    def __init__(self, config: VideoConfig, embed_dim: int):
        super().__init__()
        self.config = config
        self.cnn = ResNetModel(ResNetConfig(num_channels=config.channels, **config.resnet))
        self.proj = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.cnn.config.hidden_sizes[-1], embed_dim), nn.GELU())

    @classmethod
    def from_backbone(cls, config: VideoConfig, embed_dim: int) -> VideoEncoder:
        """Initialise the CNN from config.backbone_id (a Hub id or local folder), keeping its architecture."""
        cnn = ResNetModel.from_pretrained(config.backbone_id)
        keys = ("embedding_size", "hidden_sizes", "depths", "layer_type", "downsample_in_first_stage")
        config.resnet = {k: getattr(cnn.config, k) for k in keys}
        config.channels = cnn.config.num_channels
        encoder = cls(config, embed_dim)
        encoder.cnn.load_state_dict(cnn.state_dict())
        return encoder

    def embed_frames(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) crops -> (N, D) per-frame embeddings; with config.mirror_average, outside training, the mean
        of each crop's and its left-right mirror image's embedding."""
        if self.config.mirror_average and not self.training:
            both = self.proj(self.cnn(pixel_values=torch.cat([crops, crops.flip(-1)])).pooler_output.flatten(1))
            return (both[: len(crops)] + both[len(crops):]) / 2
        return self.proj(self.cnn(pixel_values=crops).pooler_output.flatten(1))
