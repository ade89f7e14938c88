#!/usr/bin/env bash
# Laboro Tomato subset: train on its Train split (10 % carved out for validation), evaluate on its Test split.
# The weights are NOT shipped (non-commercial licence); the figures go into the tomato-ripeness card.
set -euo pipefail
DATA=${DATA:-../shared/datasets/laboro-tomato-subset}
OUT=${OUT:-/tmp/fieldline-recipes}/laboro
BUDGET=${BUDGET:-600}
MAP='*_fully_ripened=ripe,*_half_ripened=half_ripe,*_green=green'
mkdir -p "$OUT"
fieldline model train --data "$DATA" --format supervisely --map "$MAP" --classes green,half_ripe,ripe \
  --input-size 448 --mosaic 0.5 --out-dir "$OUT/run" --time-budget "$BUDGET" --val-interval 60 --seed 7
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$OUT/laboro-tomato.onnx" --name laboro-tomato \
  --version 0.0.0-eval --train-info "$OUT/run/train_info.json"
fieldline model eval --model "$OUT/laboro-tomato.onnx" --data "$DATA" --format supervisely --map "$MAP" \
  --split test --plots "$OUT/plots" --json | tail -n 1 > "$OUT/eval_test.json"
# The shipped synthetic-trained model on the same test split: the realism gap.
fieldline model eval --model models/zoo/tomato-ripeness.onnx --data "$DATA" --format supervisely --map "$MAP" \
  --split test --json | tail -n 1 > "$OUT/eval_zoo_on_test.json"
cat "$OUT/eval_test.json"
