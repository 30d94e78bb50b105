"""`stresslab finetune SOURCE --out DIR [--init MODEL]`: corrections -> a better checkpoint, on a clean checkout.

prepare   SOURCE (training.finetune_data: a store, a Hub dataset id, an exported collection or a clip folder) ->
          tower inputs through stresslab.inputs.tower_inputs; unusable corrections skipped and counted in one line
fine-tune the towers (the text transformer only with --text-tower), heads and fusion, BatchNorm statistics frozen,
          through training.loop.fit on
          fusion_loss(corrections)                                           (training.losses)
          + the replay set's cross-entropy + replay_distill x KL(initial model || model) on its rows, when MODEL
            ships replay.safetensors (training.replay: redistributable corpora's voice features through the voice
            tower, their face and text embeddings through the heads; dark experience replay)
          + distill x KL(initial model || model) on the corrections' outputs (learning without forgetting; off by
            default: it holds the old skills but stops the adaptation, see FinetuneConfig)
evaluate  before/after on a held-out part of SOURCE (speaker-disjoint where speakers are known) and on the original
          evaluation sets present under --eval-data (training.eval_sets)
card      DIR is a checkpoint folder (config, weights, tokenizer, README.md, finetune.json, replay.safetensors
          copied when MODEL has one): `STRESSLAB_MODEL=DIR`, `stresslab analyze --model DIR`, push_to_hub.

This module is the `stresslab finetune` plugin (entry point group "stresslab.commands"): register() adds the
subcommand; torch and the model code load only when it runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MIN_CORRECTIONS = 20
MAX_CROPS = 8  # face crops per clip and training step (all of them when scoring)


@dataclass
class FinetuneConfig:
    """The fine-tuning budget and regularisers. Chosen on bench/adaptation.py (250 RAVDESS corrections into a model
    that never heard RAVDESS, UAR on other actors; 2 cores, 86 s): replay of the voice tower's inputs with
    distillation on the replay rows lifts audio UAR 0.229 -> 0.444 and keeps EmoDB (+0.017) and GoEmotions (-0.010);
    without replay the same steps reach 0.469 but EmoDB falls to 0.214; distillation on the corrections alone
    (no replay) stops the adaptation (0.299) and still loses EmoDB (0.342)."""

    steps: int = 600
    batch: int = 16
    lr: float = 3e-4
    distill: float = 0.0  # weight of the KL to the initial model's outputs on the corrections (0: off)
    temperature: float = 2.0
    text_tower: bool = False  # fine-tune the text transformer too (False: frozen, its embeddings computed once)
    replay: int = 32  # replay rows per modality and step, when the initial model ships a replay set (0: off)
    replay_distill: float = 1.0  # weight of the KL to the initial model's outputs on those replay rows
    held_out: float = 0.2
    min_corrections: int = MIN_CORRECTIONS
    seed: int = 0
    threads: int = 2


# The FinetuneConfig fields `stresslab finetune` takes as --options (--text-tower is a flag).
OPTIONS = ("steps", "batch", "lr", "distill", "replay", "replay_distill", "min_corrections", "seed", "threads")


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `finetune` to the stresslab command's subparsers (the plugin's entry point)."""
    p = sub.add_parser("finetune", help="fine-tune a model on corrections (a store, a Hub dataset id, an exported "
                                        "collection or a clip folder); writes a checkpoint folder with its card")
    p.add_argument("source", help="correction store folder, Hub dataset repo id, exported collection or clip folder")
    p.add_argument("--out", required=True, help="the checkpoint folder to write")
    p.add_argument("--init", help="the model to start from: folder or Hub id (default: STRESSLAB_MODEL or bundled)")
    p.add_argument("--eval-data", default="data/corpora", help="folder of prepared clip folders: the original "
                   "evaluation sets measured before/after where present (default data/corpora)")
    p.add_argument("--eval-sets", nargs="*", help="only these training.eval_sets names")
    defaults = FinetuneConfig()
    for name in OPTIONS:
        value = getattr(defaults, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"default {value}")
    p.add_argument("--text-tower", action="store_true", help="fine-tune the text transformer's top layers too")
    p.set_defaults(func=cmd_finetune)
    return p


def cmd_finetune(args: argparse.Namespace) -> int:
    cfg = FinetuneConfig(**{k: getattr(args, k) for k in (*OPTIONS, "text_tower")})
    try:
        return run(args.source, Path(args.out), args.init, cfg, Path(args.eval_data), args.eval_sets)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(source: str, out: Path, init: str | None, cfg: FinetuneConfig, eval_data: Path | None = None,
        eval_sets: list[str] | None = None, progress: bool = True) -> int:
    """The whole command (see the module docstring); returns the exit status (2: too few usable corrections)."""
    import torch

    from stresslab.config import default_model_name
    from stresslab.model import StressModel
    from training import finetune_data as FD

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    init = init or default_model_name()
    t0 = time.time()
    model = StressModel.from_pretrained(init)
    model.config.audio.speech_detector = "relative"  # quiet speech is speech (issue 17); features unchanged
    prepared = FD.prepare(source, model.config, out, progress)
    print(prepared.skipped_line(), file=sys.stderr)
    n = len(prepared.usable)
    if n < cfg.min_corrections:
        print(f"error: {n} usable correction{'s' if n != 1 else ''} in {source}; fine-tuning needs at least "
              f"{cfg.min_corrections} (with an emotion, and a face, a voice or words)", file=sys.stderr)
        return 2
    train, held, how = FD.held_out(prepared.usable, cfg.held_out)
    replay = replay_path(init)
    tuned, fit_seconds = finetune(model, train, cfg, replay)
    out.mkdir(parents=True, exist_ok=True)
    tuned.save_pretrained(out, half=True, model_card="")
    if replay is not None:
        shutil.copy2(replay, out / "replay.safetensors")
    tuned = StressModel.from_pretrained(out)  # the figures are those of the checkpoint as written (float16)
    initial = StressModel.from_pretrained(init)
    figures = {"held_out": {"how": how, "n": len(held), "before": score(initial, held), "after": score(tuned, held)}}
    figures["original"] = original_sets(initial, tuned, eval_data, eval_sets, progress)
    shown = Path(init).name if Path(init).is_dir() else str(init)  # a folder's name, never a server path
    source = Path(source).name if Path(source).exists() else source
    record = {"source": source, "source_kind": prepared.kind, "init": shown, "usable": n,
              "skipped": prepared.reasons(), "train": len(train), "per_emotion": FD.counts(train),
              "config": asdict(cfg), "fit_seconds": round(fit_seconds, 1),
              "seconds": round(time.time() - t0, 1), "replay": replay is not None and cfg.replay > 0,
              **figures}
    (out / "finetune.json").write_text(json.dumps(record, indent=2) + "\n")
    from training.finetune_card import card

    (out / "README.md").write_text(card(record, _init_card(init)))
    h = figures["held_out"]
    print(f"wrote {out}: fused UAR on {h['n']} held-out corrections {_fmt(h['before'])} -> {_fmt(h['after'])} "
          f"({record['seconds']:.0f} s)", file=sys.stderr)
    return 0


def _fmt(s: dict) -> str:
    return f"{s['fused']['uar']:.3f}" if s.get("fused") else "n/a"


def replay_path(init: str | Path) -> Path | None:
    """MODEL's replay.safetensors, when it has one: in its folder, or in its Hub repo (downloaded; None when the repo
    has none)."""
    from stresslab.config import is_hub_id

    p = Path(init) / "replay.safetensors"
    if not is_hub_id(init):
        return p if p.is_file() else None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(str(init), "replay.safetensors"))
    except Exception:  # no replay set in that repo (or it went away since the model came): fine-tune without
        return None


def _init_card(init: str | Path) -> str:
    p = Path(init) / "README.md"
    return p.read_text(encoding="utf-8") if p.is_file() else ""


def finetune(model, train: list, cfg: FinetuneConfig, replay: Path | None = None):
    """Fine-tune model on the usable corrections `train`; returns (the model in eval mode, seconds)."""
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator

    from stresslab.labels import MODALITIES
    from training.config import LossWeights, Optimisation
    from training.loop import Stage, fit
    from training.losses import fusion_loss

    rng = np.random.default_rng(cfg.seed)
    rep = load_replay(replay) if replay is not None and cfg.replay > 0 else {}
    cache, params = None, list(model.parameters())
    if cfg.text_tower:
        model.text.set_trainable(model.config.text.trainable_layers)
    else:  # few corrections, often the same words: the pretrained transformer stays, the text head adapts
        cache = text_embeddings(model, [it.text for it in train if it.text])
        params = [p for name, p in model.named_parameters() if not name.startswith("text.")]
    teacher, rehearse = {}, bool(rep) and cfg.replay_distill > 0
    frozen = copy.deepcopy(model).eval() if cfg.distill > 0 or rehearse else None  # the initial model
    with torch.no_grad():
        for start in range(0, len(train), 32) if cfg.distill > 0 else ():  # its answers on the corrections
            emb, mask = embed_items(frozen, train[start:start + 32], MAX_CROPS, cache)
            pred = frozen.predict(emb, mask)
            for i in range(len(mask)):
                teacher[start + i] = (pred.fused_logits[i], {m: pred.modality_logits[m][i] for m in MODALITIES})
        for m, r in rep.items() if rehearse else ():  # and on the replay rows (dark experience replay)
            logits = [_replay_predict(frozen, m, r, torch.arange(s, min(s + 64, len(r["y"]))))
                      for s in range(0, len(r["y"]), 64)]
            r["fused_t"], r["own_t"] = (torch.cat([f for f, _ in logits]), torch.cat([o for _, o in logits]))
    del frozen
    weights, T = LossWeights(), cfg.temperature

    def kl(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return T * T * F.kl_div(F.log_softmax(student / T, -1), F.log_softmax(target / T, -1), log_target=True,
                                reduction="batchmean")

    def batches():
        for _ in range(cfg.steps):
            yield rng.integers(0, len(train), min(cfg.batch, len(train)))

    def loss(idx) -> torch.Tensor:
        items = [train[k] for k in idx]
        emb, mask = embed_items(model, items, MAX_CROPS, cache)
        y = torch.tensor([it.y for it in items])
        stress = torch.tensor([it.stress for it in items], dtype=torch.float32)
        total = fusion_loss(model, emb, mask, y, weights, stress)
        if cfg.distill > 0:
            pred = model.predict(emb, mask)
            total = total + cfg.distill * kl(pred.fused_logits, torch.stack([teacher[k][0] for k in idx]))
            for j, m in enumerate(MODALITIES):
                if mask[:, j].any():
                    target = torch.stack([teacher[k][1][m] for k, keep in zip(idx, mask[:, j], strict=True) if keep])
                    total = total + cfg.distill * kl(pred.modality_logits[m][mask[:, j]], target)
        for m, r in rep.items():
            j = torch.from_numpy(rng.integers(0, len(r["y"]), cfg.replay))
            fused, own = _replay_predict(model, m, r, j)
            total = total + F.cross_entropy(fused, r["y"][j]) + F.cross_entropy(own, r["y"][j])
            if "fused_t" in r:
                total = total + cfg.replay_distill * (kl(fused, r["fused_t"][j]) + kl(own, r["own_t"][j]))
        return total

    stage = Stage("finetune", params, batches(), loss, steps=cfg.steps, lr=cfg.lr,
                  eval_every=max(1, cfg.steps // 4), frozen_batchnorm=True)
    t = time.time()
    fit(model, stage, Accelerator(cpu=True), Optimisation(), _quiet)
    return model.eval(), time.time() - t


def _replay_predict(model, modality: str, r: dict, j):
    """Replay rows j (a (n,) index tensor) of one modality through model -> ((n, 6) fused, (n, 6) own logits): voice
    features through the voice tower when the replay set has them, else the stored embeddings."""
    import torch

    from stresslab.labels import MODALITIES

    if "x" in r:  # the tower's inputs: rehearse the tower as well as the heads
        n = r["len"][j]
        rows = {modality: model.audio(r["x"][j][:, :int(n.max())], n)}
    else:
        rows = {modality: r["emb"][j]}
    only = torch.zeros(len(j), len(MODALITIES), dtype=torch.bool)
    only[:, MODALITIES.index(modality)] = True
    pred = model.predict(rows, only)
    return pred.fused_logits, pred.modality_logits[modality]


def _quiet(stage: str, **values) -> None:
    from tqdm import tqdm

    tqdm.write(f"{stage}: " + ", ".join(f"{k}={v}" for k, v in values.items()), file=sys.stderr)


def load_replay(path: Path) -> dict:
    """replay.safetensors (training.replay writes it) -> {modality: {"emb": (N, D) embeddings, "y": (N,) emotion
    ids}}, audio also with "x": (N, T, F) tower inputs and "len": (N,) frame counts when the file has them."""
    from safetensors.torch import load_file

    t = load_file(str(path))
    out: dict = {}
    for key, value in t.items():
        modality, what = key.split(".")
        out.setdefault(modality, {})[what] = value.float() if value.is_floating_point() else value.long()
    return out


def text_embeddings(model, texts: list[str]) -> dict:
    """{text: (D,) the text tower's embedding} for the distinct texts, computed once (eval mode, no gradients)."""
    import torch

    distinct, out = sorted(set(texts)), {}
    model.text.eval()
    with torch.no_grad():
        for start in range(0, len(distinct), 64):
            chunk = distinct[start:start + 64]
            out.update(zip(chunk, model.text(chunk), strict=True))
    return out


def embed_items(model, items: list, max_crops: int = 0, text_cache: dict | None = None):
    """Usable corrections through the towers, one batch per tower (with gradients where enabled):
    ({modality: (B, D)}, (B, 3) bool mask). Video: the mean over a clip's face crops (at most max_crops of them,
    evenly spaced, when max_crops > 0); audio: the clip's one window; text: the words (from text_cache when
    given: text_embeddings' dict)."""
    import numpy as np
    import torch

    from stresslab.labels import MODALITIES
    from training.features import audio_batch

    b, d = len(items), model.config.embed_dim
    mask = torch.zeros(b, len(MODALITIES), dtype=torch.bool)
    emb = {m: torch.zeros(b, d) for m in MODALITIES}
    video = [k for k, it in enumerate(items) if it.inputs.crops is not None]
    if video:
        crops = [items[k].inputs.crops for k in video]
        if max_crops:
            crops = [c[np.round(np.linspace(0, len(c) - 1, min(len(c), max_crops))).astype(int)] for c in crops]
        frames = model.video.embed_frames(torch.from_numpy(np.concatenate(crops)))
        parts = torch.split(frames, [len(c) for c in crops])
        emb["video"] = emb["video"].index_put((torch.tensor(video),), torch.stack([p.mean(0) for p in parts]))
    audio = [k for k, it in enumerate(items) if it.inputs.audio_rows]
    if audio:
        x, n = audio_batch([items[k].inputs.audio_feats[0] for k in audio], model.config.audio.n_features)
        emb["audio"] = emb["audio"].index_put((torch.tensor(audio),), model.audio(x, n))
    text = [k for k, it in enumerate(items) if it.text]
    if text:
        words = [items[k].text for k in text]
        out = torch.stack([text_cache[w] for w in words]) if text_cache is not None else model.text(words)
        emb["text"] = emb["text"].index_put((torch.tensor(text),), out)
    for j, rows in enumerate((video, audio, text)):
        mask[rows, j] = True
    return emb, mask


def score(model, items: list) -> dict:
    """UAR / accuracy of the fused answer and of each modality's own head on items: {"fused"|modality: report}."""
    import numpy as np
    import torch

    from stresslab.labels import MODALITIES
    from training.metrics import classification_report

    if not items:
        return {}
    model.eval()
    fused, own, masks = [], {m: [] for m in MODALITIES}, []
    with torch.no_grad():
        for start in range(0, len(items), 32):
            emb, mask = embed_items(model, items[start:start + 32])
            pred = model.predict(emb, mask)
            fused.append(pred.fused_logits.argmax(-1).numpy())
            masks.append(mask.numpy())
            for m in MODALITIES:
                own[m].append(pred.modality_logits[m].argmax(-1).numpy())
    y, mask = np.array([it.y for it in items]), np.concatenate(masks)
    out = {"fused": np.concatenate(fused)}
    for j, m in enumerate(MODALITIES):
        if mask[:, j].any():
            out[m] = (mask[:, j], np.concatenate(own[m]))
    rep = {"fused": classification_report(y, out.pop("fused"))}
    for m, (keep, p) in out.items():
        rep[m] = classification_report(y[keep], p[keep])
    return {k: {"n": v["n"], "uar": round(v["uar"], 4), "accuracy": round(v["accuracy"], 4)} for k, v in rep.items()}


def original_sets(initial, tuned, root: Path | None, names: list[str] | None, progress: bool) -> dict:
    """Before/after on each training.eval_sets set whose clip folder is under root: {name: {before, after, ...}}."""
    from training.eval_sets import EVAL_SETS
    from training.evaluate import report

    out = {}
    if root is None:
        return out
    for s in EVAL_SETS:
        if (names and s.name not in names) or not (root / s.corpus / "metadata.jsonl").is_file():
            continue
        docs = [report(m, str(root / s.corpus), s.modality, s.split, s.corpus if s.speakers else None,
                       progress=progress) for m in (initial, tuned)]
        out[s.name] = {"part": s.part, "data": s.data, "n": docs[0]["n"],
                       "before": round(docs[0]["uar"], 4), "after": round(docs[1]["uar"], 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m training.finetune SOURCE --out DIR ...`: the same as `stresslab finetune`."""
    p = argparse.ArgumentParser(prog="python -m training.finetune")
    sub = p.add_subparsers(dest="command", required=True)
    register(sub)
    args = p.parse_args(["finetune", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
