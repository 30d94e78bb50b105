"""Export a torch checkpoint to a folder that onnxruntime analyses alone (`stresslab export MODEL OUT [--int8]`).

The folder keeps the checkpoint's config.json, tokenizer/ and card, and adds onnx/:
  video.onnx   crops (N, C, S, S) float32 -> emb (N, D)
  audio.onnx   feats (B, T, F) float32, lengths (B,) int64 -> emb (B, D)
  text.onnx    input_ids, attention_mask (B, L) int64 -> emb (B, D)
  fusion.onnx  video, audio, text (B, D) float32, mask (B, 3) bool -> fused_logits (B, K), weights (B, 3),
               video_logits, audio_logits, text_logits (B, K)[, stress (B,)]
  manifest.json  format, precision, which operations stayed float, the file sizes
int8 quantises the text transformer (nine tenths of the weights), on the operations listed in INT8_OPS: its
MatMuls become MatMulNBits (weights in 4-bit blocks of WEIGHT_BLOCK with a float scale each, int8 arithmetic:
accuracy level 4) and its embedding table a GatherBlockQuantized of the same blocks (onnxruntime's
MatMulNBitsQuantizer). Measured on the bundled default (GoEmotions dev, 4,647 sentences): macro-F1 0.593 with
per-row int8 weights (dynamic quantisation) and 0.600 with these 4-bit blocks, and the folder falls from 29 to
19 MB. Convolutions (the face CNN, the voice CNN) stay float32: on these 2 cores their int8 kernels (ConvInteger)
were slower than float and cost accuracy.
This module needs torch (export), onnx and onnxruntime; analysing the result needs only onnxruntime.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..labels import MODALITIES
from ..model import StressModel

FORMAT = "stresslab-onnx"
FORMAT_VERSION = 1
OPSET = 21  # int4 weight blocks (the int8 export) need 21; onnxruntime 1.32 runs it
INT8_OPS = ["MatMul", "Gather"]  # the text transformer's, 4-bit weight blocks; convolutions stay float32
WEIGHT_BITS, WEIGHT_BLOCK = 4, 128


class _Video(nn.Module):
    def __init__(self, model: StressModel):
        super().__init__()
        self.video = model.video

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.video.embed_frames(crops)


class _Audio(nn.Module):
    def __init__(self, model: StressModel):
        super().__init__()
        self.audio = model.audio

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.audio(feats, lengths)


class _Text(nn.Module):
    def __init__(self, model: StressModel):
        super().__init__()
        self.text = model.text

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text({"input_ids": input_ids, "attention_mask": attention_mask})


class _Fusion(nn.Module):
    def __init__(self, model: StressModel):
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor, audio: torch.Tensor, text: torch.Tensor, mask: torch.Tensor):
        p = self.model.predict({"video": video, "audio": audio, "text": text}, mask)
        out = (p.fused_logits, p.weights, *(p.modality_logits[m] for m in MODALITIES))
        return (*out, p.stress) if p.stress is not None else out


def _export(module: nn.Module, args: tuple, names: list[str], outputs: list[str], dynamic: dict, path: Path) -> None:
    program = torch.onnx.export(module.eval(), args, input_names=names, output_names=outputs, dynamic_axes=dynamic,
                                opset_version=OPSET, dynamo=True, verbose=False)
    program.save(str(path), external_data=False)


def export(model: StressModel, out: str | Path, int8: bool = False) -> Path:
    """Write the ONNX folder for `model` (a StressModel, float32 on the CPU) to out; returns out.

    The graphs are written to a temporary folder and moved into place last, so a failed export leaves no
    half folder that load_backend would try to read."""
    if model.audio.speech is not None:
        raise ValueError("a model with a pretrained speech encoder (audio.pretrained_id) cannot be exported yet")
    out = Path(out)
    model = model.float().eval()
    cfg, d = model.config, model.config.embed_dim
    s, c, f = cfg.video.image_size, cfg.video.channels, cfg.audio.n_features
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        model.save_pretrained(folder)  # config.json, tokenizer/, README.md (+ model.safetensors, removed below)
        (folder / "model.safetensors").unlink()
        graphs = folder / "onnx"
        graphs.mkdir()
        batch = {0: "batch"}
        with torch.no_grad():
            _export(_Video(model), (torch.zeros(2, c, s, s),), ["crops"], ["emb"], {"crops": batch},
                    graphs / "video.onnx")
            _export(_Audio(model), (torch.zeros(2, 50, f), torch.tensor([50, 30])), ["feats", "lengths"], ["emb"],
                    {"feats": {0: "batch", 1: "frames"}, "lengths": batch}, graphs / "audio.onnx")
            ids = torch.ones(2, 8, dtype=torch.long)
            _export(_Text(model), (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"], ["emb"],
                    {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
                    graphs / "text.onnx")
            emb = [torch.randn(2, d) for _ in MODALITIES]  # distinct tensors: one shared would be traced as one input
            outputs = ["fused_logits", "weights", *(f"{m}_logits" for m in MODALITIES)]
            outputs += ["stress"] if model.stress_head is not None else []
            _export(_Fusion(model), (*emb, torch.ones(2, 3, dtype=torch.bool)),
                    [*MODALITIES, "mask"], outputs, {n: batch for n in [*MODALITIES, "mask"]},
                    graphs / "fusion.onnx")
        float_ops = ["all"]
        if int8:
            _quantize(graphs / "text.onnx")
            float_ops = ["Conv (video.onnx, audio.onnx)", "fusion.onnx", "LayerNorm/Softmax (text.onnx)"]
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "opset": OPSET,
                    "precision": "int8" if int8 else "float32", "int8_ops": INT8_OPS if int8 else [],
                    "weights": f"{WEIGHT_BITS}-bit weight blocks of {WEIGHT_BLOCK}" if int8 else "float32",
                    "float": float_ops, "stress_head": model.stress_head is not None,
                    "files": {p.name: p.stat().st_size for p in sorted(graphs.glob("*.onnx"))}}
        (graphs / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _card_note(folder / "README.md", manifest)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(out))
    return out


def _quantize(path: Path) -> None:
    """Quantise one graph's INT8_OPS in place: WEIGHT_BITS-bit symmetric weight blocks, int8 arithmetic."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(str(path), bits=WEIGHT_BITS, block_size=WEIGHT_BLOCK, is_symmetric=True,
                             accuracy_level=4, op_types_to_quantize=tuple(INT8_OPS),
                             quant_axes=(("MatMul", 0), ("Gather", 1)))
    chatty = logging.getLogger(MatMulNBitsQuantizer.__module__)  # a line per node at INFO: the library is quiet
    level, chatty.level = chatty.level, logging.WARNING
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # all-zero blocks: scale 0, handled by the quantizer
            q.process()
    finally:
        chatty.setLevel(level)
    tmp = path.with_suffix(".int8.onnx")
    q.model.save_model_to_file(str(tmp))
    tmp.replace(path)


def _card_note(card: Path, manifest: dict) -> None:
    """Say in the model card which runtime and precision this folder holds."""
    note = (f"\n\n## Runtime\n\nThis folder holds ONNX graphs for onnxruntime (opset {manifest['opset']}), "
            f"precision **{manifest['precision']}**"
            + (f" (int8 arithmetic with {manifest['weights']} on the text transformer's "
               f"{', '.join(manifest['int8_ops'])}; float32 kept for {', '.join(manifest['float'])})"
               if manifest["precision"] == "int8" else "")
            + ". Analyse with `stresslab analyze --model THIS_FOLDER` (torch is not needed).\n")
    card.write_text(card.read_text() + note)
