#!/usr/bin/env bash
# steel-defect (shipped): trained on synthetic surfaces only (models/synth/surface.py), 224 input.
set -euo pipefail
OUT=${OUT:-/tmp/fieldline-recipes}/steel-defect
BUDGET=${BUDGET:-600}
MORE=${MORE:-1500}  # then resumed to this many seconds (a warm restart of the cosine schedule)
VERSION=${VERSION:-1.1.2}
ZOO=${ZOO:-models/zoo}
mkdir -p "$OUT"
fieldline model train --data synth:surface --images 3000 --input-size 224 --vflip --out-dir "$OUT/run" \
  --time-budget "$BUDGET" --val-interval 90 --seed 4321
fieldline model train --data synth:surface --images 3000 --input-size 224 --vflip --out-dir "$OUT/run" \
  --time-budget "$MORE" --val-interval 90 --seed 4321 --resume
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$ZOO/steel-defect.onnx" --name steel-defect \
  --version "$VERSION" --train-info "$OUT/run/train_info.json"
# INT8: with the activations in INT8 too it loses 1.1-4.0 mAP50 points on the check frames; the convolutions alone
# with 99.999th-percentile ranges lose 0.9 there but 1.2 on the card holdout (the check frames' noise is about a
# point), so the check asks for half a point: no whole-network attempt passes, and the first block the
# mixed-precision search tries, the stem's first conv (RGB in), is enough alone in FP32: +0.5 on the check frames,
# -0.2 on the holdout.
# FP32 stays the faster file on CPUs without VNNI.
fieldline model quantize --model "$ZOO/steel-defect.onnx" --out "$ZOO/steel-defect.int8.onnx" --data synth:surface \
  --calib-count 300 --check-count 300 --max-drop 0.005 | tail -n 1 > "$OUT/quantize.json"
# The inspection rule's pass/reject threshold, per file: the lowest score rejecting at most 5 % of defect-free
# parts (1.1.1 = the 1.1.0 files with it; 1.1.2 = the same weights, INT8 with the stem in FP32)
for f in steel-defect steel-defect.int8; do
  fieldline model calibrate --model "$ZOO/$f.onnx" --objective reject --max-false-reject 0.05
done
cp "$OUT/run/train_info.json" "$OUT/train_info.json"
