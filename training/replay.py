"""A compact replay set for `stresslab finetune`: tower embeddings of corpora whose licences allow redistribution,
stored beside a checkpoint (replay.safetensors) so fine-tuning can rehearse the old classes without the corpora.

    python -m training.replay --model models/default --data data/corpora [--per-class 50] [--out FILE]

What goes in (embeddings by MODEL's own towers, never the media; labels as emotion ids):
  audio  EmoDB training speakers (CC0-1.0) + CREMA-D sample actor 1001 (ODbL 1.0 / DbCL 1.0); also their voice
         tower *inputs* (frame features, at most MAX_FRAMES of a clip), so fine-tuning can rehearse the tower itself:
         corrections move the voice tower, and embeddings alone cannot hold it (bench/adaptation.py)
  video  CREMA-D sample actor 1001's face crops, mean per clip (ODbL 1.0 / DbCL 1.0)
  text   GoEmotions train (Apache-2.0)
Not FER2013 (no licence) nor RAVDESS (non-commercial, share-alike). Keys: "<modality>.emb" (N, D) float16 and
"<modality>.y" (N,) int64, plus "audio.x" (N, T, F) float16 zero-padded frame features and "audio.len" (N,) int64;
the metadata names the sources and the model whose towers made them.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

TEXT_PER_CLASS = 250  # sentences are cheap (one (D,) row each) and the text head forgets with too few of them
MAX_FRAMES = 400  # 4 s of voice features a clip (hop 10 ms): EmoDB's utterances are 1-9 s, median about 2.6 s
SOURCES = {"audio": "EmoDB training speakers (CC0-1.0), CREMA-D actor 1001 (ODbL 1.0 / DbCL 1.0)",
           "video": "CREMA-D actor 1001 (ODbL 1.0 / DbCL 1.0)", "text": "GoEmotions train (Apache-2.0)"}


def _capped(items: list, per_class: int, rng: np.random.Generator) -> list:
    from training.data import balanced_indices

    y = np.array([it.y for it in items])
    return [items[i] for i in sorted(balanced_indices(y, per_class, rng))] if len(items) else []


def build(model, data: Path, per_class: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    """The replay tensors (see the module docstring) from the clip folders under data that exist."""
    from stresslab.inputs import TowerInputs
    from stresslab.labels import MODALITIES
    from training import data as D
    from training import finetune_data as FD
    from training.clip_folder import read_clip_folder
    from training.features import audio_batch
    from training.finetune import embed_items

    rng, skipped = np.random.default_rng(seed), Counter()
    media: list = []
    if (data / "emodb" / "metadata.jsonl").is_file():
        train = {r["id"] for r in D.default_split(read_clip_folder(data / "emodb"), "emodb")["train"]}
        media += [c for c in FD.from_clip_folder(data / "emodb") if c.id in train]
    if (data / "cremad" / "metadata.jsonl").is_file():
        media += [c for c in FD.from_clip_folder(data / "cremad") if c.speaker == "1001"]
    for c in media:
        c.text = None  # fixed sentences say nothing of the emotion
    items = FD.to_usable(media, model.config, skipped, progress=False)
    if (data / "goemotions" / "metadata.jsonl").is_file():
        texts = [r for r in read_clip_folder(data / "goemotions") if r["split"] == "train" and r["emotion"]
                 and r["text"]]
        items += [FD.Usable(r["id"], TowerInputs(windows=[(0.0, 0.0)]), r["text"], int(y), -1.0, None)
                  for r, y in zip(texts, D.labels_of(texts), strict=True)]
    out: dict[str, torch.Tensor] = {}
    model.eval()
    with torch.no_grad():
        for m in MODALITIES:
            rows = [it for it in items if _has(it, m)]
            rows = _capped(rows, TEXT_PER_CLASS if m == "text" else per_class, rng)
            if not rows:
                continue
            embs = [embed_items(model, rows[s:s + 32])[0][m] for s in range(0, len(rows), 32)]
            out[f"{m}.emb"] = torch.cat(embs).half().contiguous()
            out[f"{m}.y"] = torch.tensor([it.y for it in rows], dtype=torch.int64)
            if m == "audio":
                x, lengths = audio_batch([it.inputs.audio_feats[0][:MAX_FRAMES] for it in rows],
                                         model.config.audio.n_features)
                out["audio.x"], out["audio.len"] = x.half().contiguous(), lengths.long()
    return out


def _has(item, modality: str) -> bool:
    return {"video": item.inputs.crops is not None, "audio": bool(item.inputs.audio_rows),
            "text": bool(item.text)}[modality]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.replay", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/default")
    p.add_argument("--data", default="data/corpora")
    p.add_argument("--per-class", type=int, default=50, help="clips per emotion for voices and faces (default 50)")
    p.add_argument("--out", help="default: MODEL/replay.safetensors")
    args = p.parse_args(argv)
    from safetensors.torch import save_file

    from stresslab.model import StressModel

    torch.set_num_threads(2)
    model = StressModel.from_pretrained(args.model)
    tensors = build(model, Path(args.data), args.per_class)
    if not tensors:
        raise SystemExit(f"error: no emodb/, cremad/ or goemotions/ clip folder under {args.data}")
    out = Path(args.out or Path(args.model) / "replay.safetensors")
    used = {m: SOURCES[m] for m in SOURCES if f"{m}.emb" in tensors}
    meta = {"model": model.config.name, "sources": json.dumps(used),
            "what": "tower embeddings (not media) with emotion ids; see training/replay.py"}
    save_file(tensors, str(out), metadata=meta)
    print(f"wrote {out}: " + ", ".join(f"{k.split('.')[0]} {len(v)}" for k, v in tensors.items() if k.endswith(".y")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
