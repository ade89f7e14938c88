"""Measure the shipped models (mAP, latency, sizes) into metrics JSON and render the model card."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.detectors.onnx_detector import OnnxDetector
from models.evaluate import evaluate, synth_frames

ZOO = Path(__file__).parent / "zoo"


def measure_latency(model: Path, runs: int = 200, seed: int = 31337) -> dict[str, float]:
    """Median/p95 ms of the onnxruntime session alone (1 thread, 320 input) and of detect()."""
    det = OnnxDetector(model, threads=1)
    frames = [img for img, _, _ in synth_frames("synth:tomato", 5, seed)]
    from edge_agent.detectors.preprocess import letterbox, to_tensor_rgb01

    x = to_tensor_rgb01(letterbox(frames[0], det.input_size)[0])
    sess, name = det._session, det._session.get_inputs()[0].name  # noqa: SLF001 (bench only)
    for _ in range(20):
        sess.run(None, {name: x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        t.append((time.perf_counter() - t0) * 1000)
    e2e = []
    for i in range(runs // 2):
        t0 = time.perf_counter()
        det.detect(frames[i % len(frames)])
        e2e.append((time.perf_counter() - t0) * 1000)
    return {"session_median_ms": round(float(np.median(t)), 2), "session_p95_ms": round(float(np.percentile(t, 95)), 2),
            "detect_median_ms": round(float(np.median(e2e)), 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


def record_metrics(fp32: Path, int8: Path, train_info: dict[str, Any], holdout_count: int = 300,
                   holdout_seed: int = 20261, out: Path | None = None) -> dict[str, Any]:
    from edge_agent.detectors.onnx_detector import OnnxDetector

    metrics: dict[str, Any] = {"version": OnnxDetector(fp32).version, "train": train_info, "holdout": {"data": "synth:tomato", "count": holdout_count,
                                                               "seed": holdout_seed}, "models": {}}
    for tag, path in (("fp32", fp32), ("int8", int8)):
        ev = evaluate(path, count=holdout_count, seed=holdout_seed)
        metrics["models"][tag] = {"file": Path(path).name, "bytes": Path(path).stat().st_size, "sha256": ev["sha256"],
                                  "map50": ev["map50"], "map50_95": ev["map50_95"], "per_class": ev["per_class"],
                                  "instances": ev["instances"], "latency": measure_latency(path)}
    out = out or ZOO / "tomato-ripeness.metrics.json"
    Path(out).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def render_card(metrics: dict[str, Any]) -> str:
    tr, ho, m = metrics["train"], metrics["holdout"], metrics["models"]
    f, q = m["fp32"], m["int8"]
    rows = "\n".join(
        f"| {lab} | {f['per_class'][lab]['ap50']:.3f} | {q['per_class'][lab]['ap50']:.3f} | "
        f"{f['per_class'][lab]['ap50_95']:.3f} | {q['per_class'][lab]['ap50_95']:.3f} |"
        for lab in f["per_class"])
    return f"""# Model card: tomato-ripeness {metrics.get("version", "1.0.0")}

Detects tomato fruits and classifies ripeness as `green` / `half_ripe` / `ripe` (continuous
ripeness < 0.4 / < 0.75 / else, i.e. the USDA stages collapsed to three). FieldLine-native ONNX
contract: input `images` float32 [1,3,320,320] RGB 0..1 (letterboxed, pad 114), output
`detections` [1, N, 4+3] = x1,y1,x2,y2 in input pixels + sigmoid class scores (the score
estimates box IoU). Load with `edge_agent.detectors.OnnxDetector`.

## How it was made

- **Data**: 100 % synthetic, `models/synth/tomato.py` (procedural plants, trusses, leaves that
  occlude fruit, plastic/foliage/dark/aisle backgrounds, sun/shade/artificial tint, blur, noise,
  JPEG). Boxes are the visible extent of each fruit; fruits < 35 % visible are not labelled.
  {tr['train_images']} images at 640x480, seed {tr['train_seed']} (frame i seeded with
  `[seed, i]`), train data hash `{tr['train_data_hash']}`.
- **Network**: `models/net.py` TomatoNet, depthwise-separable backbone + top-down/bottom-up FPN,
  shared anchor-free head at strides 8 and 16, {tr['parameters']:,} parameters.
- **Recipe** (`models/train.py`): scale 0.75-1.45 and placement on 256x256 training crops
  (channels-last), h-flip, S/V jitter (hue +-1.5 only: hue is the label), centre-sampling
  assigner, quality focal loss + GIoU, AdamW lr 3e-3, warmup + cosine over a wall-clock budget,
  EMA, batch {tr['config']['batch']}, {tr['steps']} steps = {tr['epochs_done']} epochs,
  {tr['train_seconds'] / 60:.1f} min training on 2 CPU threads (+ {tr['data_seconds']:.0f} s rendering data).
- **INT8**: onnxruntime static quantisation, QDQ, per-channel weights, Conv ops only, MinMax
  calibration on 100 synthetic frames (seed 4242) letterboxed exactly like the detector.

## Files

| file | size | sha256 |
|---|---|---|
| `{f['file']}` (FP32) | {f['bytes'] / 1024:.0f} KiB | `{f['sha256'][:16]}...` |
| `{q['file']}` (INT8) | {q['bytes'] / 1024:.0f} KiB | `{q['sha256'][:16]}...` |

## Accuracy (holdout: {ho['count']} fresh synthetic images, seed {ho['seed']}, {f['instances']} fruits)

pycocotools, conf 0.001, class-wise NMS IoU 0.5, one class per box.

| | FP32 | INT8 |
|---|---|---|
| mAP50 | {f['map50']:.3f} | {q['map50']:.3f} |
| mAP50-95 | {f['map50_95']:.3f} | {q['map50_95']:.3f} |

| class | AP50 FP32 | AP50 INT8 | AP50-95 FP32 | AP50-95 INT8 |
|---|---|---|---|---|
{rows}

## Latency (onnxruntime CPU, 1 thread, 320x320, median of 200 runs on the 2-core dev box)

| | FP32 | INT8 |
|---|---|---|
| session.run | {f['latency']['session_median_ms']:.2f} ms | {q['latency']['session_median_ms']:.2f} ms |
| detect() incl. letterbox + NMS (640x480 frame) | {f['latency']['detect_median_ms']:.2f} ms | {q['latency']['detect_median_ms']:.2f} ms |

The dev box is shared: 1-minute load average during the runs was {f['latency'].get('loadavg_1m', '?')} (FP32) /
{q['latency'].get('loadavg_1m', '?')} (INT8) on 2 cores, so these are pessimistic; re-measure on the target device.

## Limits

Trained on synthetic images only: expect a domain gap on real greenhouse photos (not measured
here; the Laboro Tomato subset in `shared/` is CC BY-NC-SA and must not be used to train shipped
weights). Ripeness near the 0.4 / 0.75 thresholds is ambiguous by construction.

## Licence

Weights and data generator: Apache-2.0 (FieldLine's own; synthetic data, no third-party images).
"""


def write_card(metrics_path: Path | None = None, out: Path | None = None) -> Path:
    metrics_path = metrics_path or ZOO / "tomato-ripeness.metrics.json"
    out = out or ZOO / "tomato-ripeness.card.md"
    Path(out).write_text(render_card(json.loads(Path(metrics_path).read_text())))
    return Path(out)
