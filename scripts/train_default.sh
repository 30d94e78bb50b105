#!/usr/bin/env bash
# Reproduces the bundled default model (models/default) from ../shared/data on this machine: prepare the corpora,
# train every stage, evaluate each set of training/eval_sets.py, write the model card from those figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SHARED=${SHARED:-../shared/data}
for c in cremad:cremad-sample emodb:emodb ravdess:ravdess-speech goemotions:goemotions-ekman fer2013:fer2013; do
  $PY -m training.prepare "${c%%:*}" "$SHARED/${c##*:}" "data/corpora/${c%%:*}" --link
done
rm -rf runs/default
$PY -m training.train --config training/configs/default.toml
M=models/default
$PY -m training.eval_sets --model $M --out runs/default/eval --data data/corpora 2>/dev/null
# the voice on speakers it never heard: RAVDESS actors held out in 6 folds (~20 min), and across corpora
$PY -m training.crosscorpus --cv ravdess --learner cnn --audio-config $M/config.json --json \
  > runs/default/eval/ravdess-cv-audio.json
$PY -m training.crosscorpus --learner linear --audio-config $M/config.json --json \
  > runs/default/eval/crosscorpus-audio-linear.json
$PY -m training.crosscorpus --learner cnn --corpora emodb ravdess --audio-config $M/config.json --json \
  > runs/default/eval/crosscorpus-audio-cnn.json
$PY -m training.replay --model $M --data data/corpora   # replay.safetensors: rehearsal for `stresslab finetune`
$PY -m training.model_card --model $M --run runs/default --eval runs/default/eval
rm -rf $M/eval && mkdir -p $M/eval && cp runs/default/eval/*.json runs/default/state.json $M/eval/
