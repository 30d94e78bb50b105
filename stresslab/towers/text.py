"""Text branch: words (typed, or a Whisper transcript) -> TextEncoder (a BERT-family transformer) -> embedding.

The transformer is built from the config stored in the checkpoint and its tokenizer from the checkpoint's
`tokenizer/` folder, so a saved model loads with no network. TextEncoder.from_backbone initialises it from a
Hub id (e.g. "sentence-transformers/all-MiniLM-L6-v2") or a local folder with the same files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TextConfig:
    """The text transformer and how words are fed to it."""

    backbone_id: str = "sentence-transformers/all-MiniLM-L6-v2"  # where its weights came from (provenance)
    backbone_config: dict | None = None  # its transformers config, filled in when built
    max_length: int = 64  # tokens; longer text is truncated
    trainable_layers: int = 2  # top transformer layers fine-tuned in training (0: frozen)


def __getattr__(name: str):
    """The torch network (TextEncoder) live in text_net.py; importing them from here still works."""
    if name in ('TextEncoder',):
        from . import text_net

        return getattr(text_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
