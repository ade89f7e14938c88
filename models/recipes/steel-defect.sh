#!/usr/bin/env bash
# steel-defect (shipped): trained on synthetic surfaces only (models/synth/surface.py), 224 input.
set -euo pipefail
OUT=${OUT:-/tmp/fieldline-recipes}/steel-defect
BUDGET=${BUDGET:-600}
MORE=${MORE:-1500}  # then resumed to this many seconds (a warm restart of the cosine schedule)
VERSION=${VERSION:-1.1.1}
ZOO=${ZOO:-models/zoo}
mkdir -p "$OUT"
fieldline model train --data synth:surface --images 3000 --input-size 224 --vflip --out-dir "$OUT/run" \
  --time-budget "$BUDGET" --val-interval 90 --seed 4321
fieldline model train --data synth:surface --images 3000 --input-size 224 --vflip --out-dir "$OUT/run" \
  --time-budget "$MORE" --val-interval 90 --seed 4321 --resume
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$ZOO/steel-defect.onnx" --name steel-defect \
  --version "$VERSION" --train-info "$OUT/run/train_info.json"
# INT8: with the activations in INT8 too it loses 1.1-4.0 mAP50 points on the check frames, so `quantize` falls
# back to the convolutions alone with 99.999th-percentile ranges: 0.6 points on the check frames, 0.1 on the
# card holdout (MinMax ranges lost 2.5 even with the head in FP32). FP32 stays the faster file here.
fieldline model quantize --model "$ZOO/steel-defect.onnx" --out "$ZOO/steel-defect.int8.onnx" --data synth:surface \
  --calib-count 300 --check-count 300 | tail -n 1 > "$OUT/quantize.json"
# The inspection rule's pass/reject threshold, per file: the lowest score rejecting at most 5 % of defect-free
# parts (1.1.1 = the 1.1.0 files with it)
for f in steel-defect steel-defect.int8; do
  fieldline model calibrate --model "$ZOO/$f.onnx" --objective reject --max-false-reject 0.05
done
cp "$OUT/run/train_info.json" "$OUT/train_info.json"
