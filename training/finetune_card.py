"""The model card of a `stresslab finetune` checkpoint, from its finetune.json record (every figure measured)."""

from __future__ import annotations

import re

from stresslab.labels import MODALITIES


def _row(name: str, before: dict, after: dict) -> str:
    b, a = before.get(name), after.get(name)
    if not b or not a:
        return ""
    return f"| {name} | {b['n']} | {b['uar']:.3f} | {a['uar']:.3f} | {a['uar'] - b['uar']:+.3f} |"


def card(record: dict, init_card: str = "") -> str:
    """README.md of the fine-tuned checkpoint: what it was fine-tuned on, how, and the before/after figures; the
    initial model's card follows (its licences and limits still hold)."""
    h, cfg = record["held_out"], record["config"]
    per = ", ".join(f"{e} {n}" for e, n in record["per_emotion"].items())
    skipped = ", ".join(f"{n} {why}" for why, n in record["skipped"].items()) or "none"
    rows = [r for r in (_row(m, h["before"], h["after"]) for m in ("fused", *MODALITIES)) if r]
    orig = [f"| {name} | {d['data']} | {d['n']} | {d['before']:.3f} | {d['after']:.3f} | "
            f"{d['after'] - d['before']:+.3f} |" for name, d in record["original"].items()]
    if record["replay"]:
        forgetting = (f"- replay: {cfg['replay']} rows per modality and step of the initial checkpoint's "
                      "replay.safetensors (copied here; redistributable corpora, never their media: voice "
                      "features fed through the voice tower, face and text embeddings through the heads, see "
                      "training/replay.py), with their labels' cross-entropy and "
                      f"{cfg.get('replay_distill', 0):g} x KL to the initial model's outputs on them;")
    else:
        forgetting = "- replay: none (the initial checkpoint ships no replay.safetensors);"
    off = "" if cfg["distill"] else " (off)"
    tuned = ("Every trainable weight" if cfg.get("text_tower") else
             "Every weight but the text transformer's (kept as it was: its embeddings of the words computed once)")
    header = init_card.split("---", 2)[1].strip() if init_card.startswith("---") else "library_name: stresslab"
    header = re.sub(r"(?m)^tags: \[", "tags: [fine-tuned, ", header)
    body = init_card.split("---", 2)[2] if init_card.startswith("---") else init_card
    body = re.sub(r"(?m)^(#+) ", r"#\1 ", body).strip()
    table = ["| set | data | n | UAR before | UAR after | change |", "| --- | --- | --- | --- | --- | --- |"]
    original = ("\n".join([*table, *orig]) if orig else
                "No original evaluation set was on disk when this ran (`--eval-data`), so forgetting was not "
                "measured here; see bench/adaptation.py in the StressLab repository for measured forgetting.")
    return f"""---
{header}
---
# {record['init']} fine-tuned on corrections

Written by `stresslab finetune` from {record['usable']} usable corrections (a {record['source_kind']}), starting
from `{record['init']}`.

## Fine-tuned on
- {record['train']} corrections for training, {h['n']} held out ({h['how']}); per emotion (training): {per}.
- Skipped as unusable: {skipped}.
- The voice counts as speech when its loudest 100 ms stand out from the clip's own noise floor
  (`audio.speech_detector = "relative"`), so quiet speech is heard.

## How
{tuned} (BatchNorm statistics frozen), {cfg['steps']} steps of {cfg['batch']} corrections, AdamW at
{cfg['lr']:g} with a cosine schedule ({record['fit_seconds']:.0f} s; {record['seconds']:.0f} s in all). Loss: the
training fusion loss (fused + per-modality cross-entropy, consistency, attention entropy), and against forgetting
without the original corpora:
- distillation (learning without forgetting): {cfg['distill']:g} x KL between the initial model's and this model's
  outputs on the corrections (temperature {cfg['temperature']:g}), fused and per modality{off};
{forgetting}
How much each keeps of the old skills, measured: the adaptation benchmark of the StressLab repository
(`python -m bench.adaptation`, README "Corrections"), with and without each.

## Measured
On the held-out corrections (UAR = unweighted average recall; per modality: that modality's own head):

| answer | n | UAR before | UAR after | change |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

On the initial model's evaluation sets:

{original}

## The initial model's card
{body}
"""
