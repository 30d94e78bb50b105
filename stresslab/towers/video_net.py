"""The face network: (N, C, S, S) grayscale face crops -> (N, D) embeddings. The CNN is PlainCNN (arch "plain") or
transformers' ResNetModel (arch "resnet", built from the config stored in the checkpoint, or initialised from a Hub
id such as "microsoft/resnet-18" in training). Face finding and cropping live in video.py (torch-free)."""

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


class PlainCNN(nn.Sequential):
    """(N, C, S, S) -> (N, widths[-1]): per width, its count of `convs` 3x3 convolutions with BatchNorm and ReLU, then
    a 2x2 max-pool; global average pooling at the end. At FER2013's own 48 px it learns faster than the ResNet at
    96 px (FER2013 val after 10 epochs: 0.631 vs 0.600 after 12)."""

    def __init__(self, channels: int, widths: list[int], convs: list[int]):
        layers: list[nn.Module] = []
        for width, count in zip(widths, convs, strict=True):
            for _ in range(count):
                layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                           nn.ReLU(inplace=True)]
                channels = width
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        # weights in channels-last layout: oneDNN's convolutions then run it about 1.5x faster on a CPU (38 crops
        # of 48 px: 80 vs 130 ms here); loading a checkpoint copies into these tensors and keeps the layout
        self.to(memory_format=torch.channels_last)


class VideoEncoder(nn.Module):
    """Face crops -> embeddings. embed_frames: (N, C, S, S) -> (N, D), one per frame."""

    def __init__(self, config: VideoConfig, embed_dim: int):
        super().__init__()
        self.config = config
        if config.arch == "plain":
            self.cnn: nn.Module = PlainCNN(config.channels, config.widths, config.block_convs())
            width = config.widths[-1]
        else:
            self.cnn = ResNetModel(ResNetConfig(num_channels=config.channels, **config.resnet))
            width = self.cnn.config.hidden_sizes[-1]
        self.proj = nn.Sequential(nn.Dropout(0.2), nn.Linear(width, embed_dim), nn.GELU())

    @classmethod
    def from_backbone(cls, config: VideoConfig, embed_dim: int) -> VideoEncoder:
        """Initialise the CNN from config.backbone_id (a Hub id or local folder), keeping its architecture."""
        if config.arch != "resnet":
            raise ValueError(f"video.backbone_id needs arch 'resnet' (a transformers ResNet), got {config.arch!r}")
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
            both = self.proj(self.features(torch.cat([crops, crops.flip(-1)])))
            return (both[: len(crops)] + both[len(crops):]) / 2
        return self.proj(self.features(crops))

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) crops -> (N, W) the CNN's pooled features, before the projection."""
        if isinstance(self.cnn, PlainCNN):
            return self.cnn(crops)
        return self.cnn(pixel_values=crops).pooler_output.flatten(1)
