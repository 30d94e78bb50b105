#!/usr/bin/env bash
# Reproduces the bundled default model (models/default) from ../shared/data on this machine: prepare the corpora,
# train every stage, evaluate each part on data it never saw, write the model card from those figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SHARED=${SHARED:-../shared/data}
for c in cremad:cremad-sample emodb:emodb goemotions:goemotions-ekman fer2013:fer2013; do
  $PY -m training.prepare "${c%%:*}" "$SHARED/${c##*:}" "data/corpora/${c%%:*}" --link
done
rm -rf runs/default
$PY -m training.train --config training/configs/default.toml
mkdir -p runs/default/eval
M=models/default
ev() { $PY -m training.evaluate --model $M "$@" --json 2>/dev/null; }
ev --data data/corpora/emodb --speakers emodb --split test --modality audio > runs/default/eval/emodb-test-audio.json
ev --data data/corpora/emodb --speakers emodb --split val --modality audio > runs/default/eval/emodb-val-audio.json
ev --data data/corpora/cremad --modality fused > runs/default/eval/cremad-fused.json
ev --data data/corpora/cremad --modality audio > runs/default/eval/cremad-audio.json
ev --data data/corpora/fer2013 --split val --modality video > runs/default/eval/fer-val-video.json
ev --data data/corpora/goemotions --split dev --modality text > runs/default/eval/goemotions-dev-text.json
$PY -m training.model_card --model $M --run runs/default --eval runs/default/eval
mkdir -p $M/eval && cp runs/default/eval/*.json runs/default/state.json $M/eval/
