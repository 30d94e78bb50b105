"""Speech to text with openai-whisper, loaded from a local checkpoint file only (never downloaded at run time).

Where the transcript comes from when the user typed nothing. Set STRESSLAB_WHISPER to a whisper `.pt` file
(e.g. ~/.cache/whisper/base.pt, or a size name such as "base" when that file is already in whisper's cache).
Whisper's own loader reads it with torch.load(weights_only=True), which unpickles no code. When no model is
available the text modality is simply missing, and Transcriber.unavailable_reason says why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Transcript:
    """What was said: the text, its language, and (start s, end s, text) segments."""

    text: str
    language: str | None = None
    segments: list[tuple[float, float, str]] = field(default_factory=list)


def resolve_whisper(name: str | None = None) -> Path | None:
    """A local whisper checkpoint for `name` (a file path or a size name in whisper's cache), or None."""
    name = name or os.environ.get("STRESSLAB_WHISPER")
    if not name:
        return None
    path = Path(name).expanduser()
    if path.is_file():
        return path
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper" / f"{name}.pt"
    return cache if cache.is_file() else None


class Transcriber:
    """Whisper on the CPU: transcribe((N,) 16 kHz float32) -> Transcript. Load once per process."""

    def __init__(self, name: str | None = None, device: str = "cpu"):
        self.model = None
        self.unavailable_reason: str | None = None
        path = resolve_whisper(name)
        if path is None:
            # the setting that would fix it (STRESSLAB_WHISPER) is documented in the README, not shown to visitors
            self.unavailable_reason = "no speech recogniser here: type what was said to include the words"
            return
        try:
            import whisper
        except ImportError:
            self.unavailable_reason = "no speech recogniser installed: type what was said to include the words"
            return
        self.model = whisper.load_model(str(path), device=device)
        self.path = path

    @property
    def available(self) -> bool:
        return self.model is not None

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """(N,) float32 mono 16 kHz -> Transcript; greedy decoding, no temperature fallback (fast on a CPU)."""
        if self.model is None:
            raise RuntimeError(self.unavailable_reason)
        import whisper

        result = whisper.transcribe(self.model, audio.astype(np.float32), language=language, temperature=0.0,
                                    condition_on_previous_text=False, fp16=False, verbose=None)
        segments = [(float(s["start"]), float(s["end"]), s["text"].strip()) for s in result.get("segments", [])]
        return Transcript(result["text"].strip(), result.get("language"), segments)
