#!/usr/bin/env bash
# tomato-ripeness-fast (shipped): the `fast` network at 256 input on the tomato-ripeness training data, for slow
# edge CPUs. 3774 steps, then resumed to 7548 (a warm restart of the cosine schedule from its middle, as for
# tomato-ripeness 2.1; version 1.0 stopped after the first part: validation mAP50 at 256 0.790 -> 0.815). A fixed
# number of optimiser steps, so the same model comes out on any CPU; ~56 min of training (0.44 s a step, the box
# partly busy) plus ~2 min of rendering on the earlier AVX2-only dev box (1.1.0); 11.4 min + 36 s on the AMD EPYC
# with AVX-512 VNNI (1.2.0: this recipe re-run with the stop-33 export and quantiser, holdout mAP50 0.831 / 0.830
# INT8, 0.52 ms INT8 at 256 = 15.1x YOLO26n-320 at 1 thread).
set -euo pipefail
OUT=${OUT:-/tmp/fieldline-recipes}/tomato-ripeness-fast
VERSION=${VERSION:-1.2.0}
ZOO=${ZOO:-models/zoo}
mkdir -p "$OUT"
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 256 --steps 3774 \
  --val-interval 120 --out-dir "$OUT/run"
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 256 --steps 7548 \
  --val-interval 120 --out-dir "$OUT/run" --resume
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$ZOO/tomato-ripeness-fast.onnx" \
  --name tomato-ripeness-fast --version "$VERSION" --train-info "$OUT/run/train_info.json"
fieldline model quantize --model "$ZOO/tomato-ripeness-fast.onnx" --out "$ZOO/tomato-ripeness-fast.int8.onnx" \
  --data synth:tomato | tail -n 1 > "$OUT/quantize.json"
for f in tomato-ripeness-fast tomato-ripeness-fast.int8; do  # the edge agent's counting threshold, per file
  fieldline model calibrate --model "$ZOO/$f.onnx" --data synth:tomato
done
fieldline model card --name tomato-ripeness-fast --measure --train-info "$OUT/run/train_info.json" \
  --quantize-report "$OUT/quantize.json"
