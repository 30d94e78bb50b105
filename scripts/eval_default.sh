#!/usr/bin/env bash
# Measures the bundled default (after scripts/train_default.sh): each set of training/eval_sets.py through the
# product's own decoding, the voice on speakers it never heard (RAVDESS actors held out in 6 folds, ~20 min, and
# across corpora), then the model card again with those figures; the JSONs go beside the model in models/default/eval.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
M=models/default
E=runs/default/eval
$PY -m training.eval_sets --model $M --out $E --data data/corpora 2>/dev/null
# the cross-validation and cross-corpus runs train their own models from the voice's feature settings ($M/config.json)
$PY -m training.crosscorpus --cv ravdess --learner cnn --audio-config $M/config.json --json > $E/ravdess-cv-audio.json
$PY -m training.crosscorpus --learner linear --audio-config $M/config.json --json > $E/crosscorpus-audio-linear.json
$PY -m training.crosscorpus --learner cnn --corpora emodb ravdess --audio-config $M/config.json --json \
  > $E/crosscorpus-audio-cnn.json
$PY -m training.model_card --model $M --run runs/default --eval $E
rm -rf $M/eval && mkdir -p $M/eval && cp $E/*.json runs/default/state.json $M/eval/
