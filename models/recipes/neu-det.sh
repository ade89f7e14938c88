#!/usr/bin/env bash
# NEU-DET steel defects: 20 % test split (split seed 0), the 30 Validation_Images for checkpoint choice.
# Research-only data: the weights are NOT shipped; the figures go into the steel-defect card.
set -euo pipefail
DATA=${DATA:-../shared/datasets/neu-det}
OUT=${OUT:-/tmp/fieldline-recipes}/neu-det
BUDGET=${BUDGET:-1500}
mkdir -p "$OUT"
fieldline model train --data "$DATA" --format voc --splits 0.8,0,0.2 --split-seed 0 --input-size 224 --vflip \
  --out-dir "$OUT/run" --time-budget "$BUDGET" --val-interval 120 --seed 11
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$OUT/neu-det.onnx" --name neu-det \
  --version 0.0.0-eval --train-info "$OUT/run/train_info.json"
fieldline model eval --model "$OUT/neu-det.onnx" --data "$DATA" --format voc --splits 0.8,0,0.2 --split-seed 0 \
  --split test --plots "$OUT/plots" --json | tail -n 1 > "$OUT/eval_test.json"
fieldline model quantize --model "$OUT/neu-det.onnx" --out "$OUT/neu-det.int8.onnx" --data "$DATA" --format voc \
  --splits 0.8,0,0.2 --split-seed 0 --force | tail -n 1 > "$OUT/quantize.json"
cat "$OUT/eval_test.json"
