#!/usr/bin/env bash
# tomato-ripeness (shipped, the default greenhouse model): the `fast` network at 384 input on 4000 synthetic
# images (seed 1234). Objects stay at the 384-pixel scale while each step trains on a 256-pixel crop, so a step
# costs what a 256-input step costs. 3774 steps, then resumed to 7548 (a warm restart of the cosine schedule from
# its middle: version 2.0 stopped after the first part), then 1500 steps fine-tuned from those weights with the
# scale augmentation widened to 0.75-2.0 (version 2.2): the file runs the network at 576 = 1.5x its training
# scale, and fruit larger than the augmentation's top (1.45x) had never been seen at that size. On 200 validation
# frames (seed 777, never the holdout) mAP50 at 576 / 640: 0.940 / 0.944 before the fine-tune, 0.942 / 0.950
# after (mAP50-95 0.697 / 0.688 -> 0.706 / 0.712); the 7548-step weights had scored 0.903 / 0.932 / 0.940 at
# 448 / 512 / 576 (`bench/input_size.py`), so the file keeps 576 (640 costs 23 % more; the card's size table).
# A fixed number of optimiser steps, so the same model comes out on any CPU (up to run-to-run noise: version 2.2.1
# is this recipe re-run). Training time on 2 cores: 13.0 min (10.8 + 2.2, 0.086 s a step) plus 44 s of rendering
# on an AMD EPYC with AVX-512 (2.2.1); 45.5 min (39.3 + 6.3, about 0.25 s a step) on the earlier dev box without
# it (2.2.0, holdout mAP50 0.951; 2.2.1: 0.954).
# 2.2.2: the 2.2.1 weights re-exported and re-quantised: softplus in the graph as Exp/Add/Log (onnxruntime's
# Softplus kernel is scalar) and the RGB stem conv kept FP32 in the INT8 file (a 3-channel INT8 conv is slower); same
# FP32 outputs, INT8 at 320 0.90 -> 0.77 ms (1 thread, one run). The last step records the input-size table.
# Tried and not kept (stop 32, the AVX-512 box): the same recipe at --width 32 --head-width 32 (48k parameters):
# 11.1 min training, holdout mAP50 0.939 at 576 (INT8 0.939); at 320, 1.0 ms FP32 / 1.2 ms INT8 against 1.4 ms INT8
# for this model and 9.1 ms for YOLO26n-320 in one run: a quarter of the parameters buys ~30 %, as per-operator
# overhead dominates at this size.
set -euo pipefail
OUT=${OUT:-/tmp/fieldline-recipes}/tomato-ripeness
VERSION=${VERSION:-2.2.2}
ZOO=${ZOO:-models/zoo}
mkdir -p "$OUT"
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 384 --canvas 256 \
  --steps 3774 --val-interval 120 --out-dir "$OUT/run"
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 384 --canvas 256 \
  --steps 7548 --val-interval 120 --out-dir "$OUT/run" --resume
fieldline model train --data synth:tomato --images 4000 --seed 1234 --arch fast --input-size 384 --canvas 256 \
  --scale-range 0.75,2.0 --init-from "$OUT/run/best.pt" --lr 0.0006 --steps 1500 --val-interval 120 \
  --out-dir "$OUT/wide"
fieldline model export --checkpoint "$OUT/wide/best.pt" --out "$ZOO/tomato-ripeness.onnx" \
  --name tomato-ripeness --version "$VERSION" --train-info "$OUT/wide/train_info.json" --input-size 576
fieldline model quantize --model "$ZOO/tomato-ripeness.onnx" --out "$ZOO/tomato-ripeness.int8.onnx" \
  --data synth:tomato | tail -n 1 > "$OUT/quantize.json"
# The edge agent's counting threshold, per file
for f in tomato-ripeness tomato-ripeness.int8; do
  fieldline model calibrate --model "$ZOO/$f.onnx" --data synth:tomato
done
fieldline model card --name tomato-ripeness --measure --train-info "$OUT/wide/train_info.json" \
  --base-train-info "$OUT/run/train_info.json" --quantize-report "$OUT/quantize.json"
python bench/input_size.py --model "$ZOO/tomato-ripeness.onnx" --sizes 320,384,448,512,576,640,704 \
  > "$OUT/size_sweep.txt"
fieldline model card --name tomato-ripeness --size-sweep "$OUT/size_sweep.txt"
