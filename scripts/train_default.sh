#!/usr/bin/env bash
# Reproduces the bundled default model (models/default) from ../shared/data on this machine: prepare the corpora,
# train every stage, write the replay set and the model card. scripts/eval_default.sh then measures it (about
# 30 min more) and rewrites the card with those figures.
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
$PY -m training.replay --model $M --data data/corpora   # replay.safetensors: rehearsal for `stresslab finetune`
$PY -m training.model_card --model $M --run runs/default --eval runs/default/eval
