"""Video branch: frames -> face boxes -> grayscale face crops -> VideoEncoder (a CNN) -> pooled embedding.

Faces are found with OpenCV's Haar cascade (it ships in the opencv-python wheels and runs offline). Crops are
grayscale and square, like the FER2013 images the default was trained on; a still image is a one-frame video.
The CNN is either a plain VGG-style stack at the crops' own resolution (arch "plain", the default's) or
transformers' ResNetModel (arch "resnet"), built from the config stored in the checkpoint (no download), or
initialised from a Hub id such as "microsoft/resnet-18" by VideoEncoder.from_backbone for users who have the Hub.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class VideoConfig:
    """Face crops and the CNN that embeds them."""

    image_size: int = 48  # crops are resized to image_size x image_size
    channels: int = 1  # 1: grayscale; 3: gray replicated to RGB (for ImageNet backbones)
    backbone_id: str | None = None  # Hub id to initialise from (training only, arch "resnet"); None: from scratch
    # "plain": per block, `convs` 3x3 convolutions + BatchNorm + ReLU and a 2x2 max-pool, `widths` channels, global
    # average pooling; "resnet": transformers' ResNetModel with the `resnet` settings (its stem divides by 4)
    arch: str = "resnet"
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    convs: list[int] | None = None  # per block of the plain CNN, its number of convolutions (None: two each)
    resnet: dict = field(default_factory=lambda: dict(
        embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], layer_type="basic",
        downsample_in_first_stage=False))
    detect_side: int = 320  # frames are down-scaled to this longer side for face detection
    min_face: int = 24  # smallest face side (pixels at detect_side) the detector reports
    margin: float = 0.1  # crop margin around the detected box, as a fraction of its side
    # Test-time mirroring: outside training, a face's embedding is the mean of the crop's and its mirror image's
    # (twice the CNN's work; +0.8 points accuracy and +1.7 UAR on FER2013 val for the 0.1 default's face tower).
    mirror_average: bool = False

    def block_convs(self) -> list[int]:
        """The plain CNN's number of 3x3 convolutions in each block: `convs`, or two per width."""
        return self.convs or [2] * len(self.widths)


Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels


class FaceDetector:
    """The largest frontal face in each frame, by OpenCV's Haar cascade. Safe to share between threads (a live
    stream and an upload's analysis): a CascadeClassifier is not, so each thread gets its own, loaded on first use."""

    PATH = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"

    def __init__(self, config: VideoConfig | None = None):
        self.config = config or VideoConfig()
        self._local = threading.local()
        self._load()  # fail here, at start-up, when the cascade file is missing

    def _load(self) -> cv2.CascadeClassifier:
        cascade = cv2.CascadeClassifier(self.PATH)
        if cascade.empty():
            raise RuntimeError(f"OpenCV's Haar cascade is missing at {self.PATH} (opencv-python-headless < 5 ships "
                               "it)")
        self._local.cascade = cascade
        return cascade

    @property
    def cascade(self) -> cv2.CascadeClassifier:
        """This thread's cascade."""
        return getattr(self._local, "cascade", None) or self._load()

    def __call__(self, frames: np.ndarray) -> list[Box | None]:
        """frames: (T, H, W, 3) uint8 RGB -> one box (or None) per frame, tracking from frame to frame."""
        boxes: list[Box | None] = []
        for f in frames:
            boxes.append(self.detect(f, near=boxes[-1] if boxes else None))
        return boxes

    def detect(self, frame: np.ndarray, near: Box | None = None) -> Box | None:
        """The largest face in one (H, W, 3) RGB or (H, W) gray frame, or None.

        With `near` (the box in the previous sampled frame) it first searches only around it, at sizes close to
        it: about 5x faster than a whole-frame search, which remains the fall-back.
        """
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        if min(h, w) <= 64:  # already a face crop (FER-style images): the whole image is the face
            return (0, 0, w, h)
        scale = min(1.0, self.config.detect_side / max(h, w))
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 \
            else gray
        small = cv2.equalizeHist(small)
        found = None
        if near is not None:
            x, y, bw, bh = (round(v * scale) for v in near)
            pad = bw // 2
            x0, y0 = max(0, x - pad), max(0, y - pad)
            roi = small[y0: y + bh + pad, x0: x + bw + pad]
            side = (max(self.config.min_face, int(bw * 0.7)), int(bw * 1.4) + 1)
            hits = self.cascade.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=4, minSize=(side[0], side[0]),
                                                 maxSize=(side[1], side[1]))
            found = [(hx + x0, hy + y0, hw, hh) for hx, hy, hw, hh in hits] if len(hits) else None
        if found is None:
            found = self.cascade.detectMultiScale(small, scaleFactor=1.15, minNeighbors=5,
                                                  minSize=(self.config.min_face, self.config.min_face))
        if len(found) == 0:
            return None
        x, y, bw, bh = max(found, key=lambda b: b[2] * b[3])
        return (round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))


def face_crop_array(frames: np.ndarray, boxes: list[Box | None], config: VideoConfig) -> tuple[np.ndarray, list[int]]:
    """Crops of the frames that have a box: ((N, C, S, S) float32 in [-1, 1], indices of those frames)."""
    crops, kept = [], []
    for i, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        if box is not None:
            gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            crops.append(crop_face(gray, box, config))
            kept.append(i)
    if not crops:
        return np.zeros((0, config.channels, config.image_size, config.image_size), np.float32), []
    return normalize_crops(np.stack(crops), config), kept


def normalize_crops(gray_crops: np.ndarray, config: VideoConfig) -> np.ndarray:
    """(N, S, S) uint8 -> (N, C, S, S) float32 in [-1, 1] (gray repeated over C channels)."""
    x = (np.asarray(gray_crops, np.float32) / 127.5 - 1.0)[:, None]
    return np.ascontiguousarray(np.repeat(x, config.channels, 1) if config.channels != 1 else x)


def crop_face(gray: np.ndarray, box: Box, config: VideoConfig) -> np.ndarray:
    """A square (S, S) uint8 crop around box, with a margin, clamped to the frame."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + config.margin))
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(gray.shape[1], cx + side / 2)), int(min(gray.shape[0], cy + side / 2))
    face = gray[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else gray
    return cv2.resize(face, (config.image_size, config.image_size), interpolation=cv2.INTER_AREA)


def __getattr__(name: str):
    """The torch parts (VideoEncoder, face_crops, to_tensor) live in video_net.py; importing them from here works."""
    if name in ('VideoEncoder', 'face_crops', 'to_tensor'):
        from . import video_net

        return getattr(video_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
