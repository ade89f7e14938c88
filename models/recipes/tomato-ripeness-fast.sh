#!/usr/bin/env bash
# tomato-ripeness-fast (shipped): the `fast` network at 256 input on the tomato-ripeness training data, for slow
# edge CPUs. A fixed number of optimiser steps (the step count of the tomato-ripeness run), so the same model
# comes out on any CPU; ~24 min of training plus ~2 min of rendering on the 2-core dev box.
set -euo pipefail
OUT=${OUT:-/tmp/fieldline-recipes}/tomato-ripeness-fast
VERSION=${VERSION:-1.0.1}
ZOO=${ZOO:-models/zoo}
mkdir -p "$OUT"
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 256 --steps 3774 \
  --val-interval 120 --out-dir "$OUT/run"
fieldline model export --checkpoint "$OUT/run/best.pt" --out "$ZOO/tomato-ripeness-fast.onnx" \
  --name tomato-ripeness-fast --version "$VERSION" --train-info "$OUT/run/train_info.json"
fieldline model quantize --model "$ZOO/tomato-ripeness-fast.onnx" --out "$ZOO/tomato-ripeness-fast.int8.onnx" \
  --data synth:tomato | tail -n 1 > "$OUT/quantize.json"
fieldline model card --name tomato-ripeness-fast --measure --train-info "$OUT/run/train_info.json" \
  --quantize-report "$OUT/quantize.json"
