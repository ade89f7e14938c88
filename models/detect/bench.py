"""Side-by-side latency of ONNX models in one process: onnxruntime session time per thread count.

Runs are interleaved in blocks (``block`` runs of model A, then of model B, ..., then again) so that a noisy
machine slows every model alike: compare ratios, not absolute times. Each block starts with one untimed run:
the first run after another model finds the caches full of that model's weights and buffers, and an edge agent
runs its one model back to back. Measured in one session (tomato-ripeness INT8 at 320 beside YOLO26n-320, 1 thread,
100 runs each): blocks of 1 (run-by-run interleaving, used until stop 33) 0.95 vs 8.13 ms, of 10 0.81 vs 8.04, of 25
(the default) 0.77 vs 7.96, of 50 0.76 vs 7.98: a small model's first runs after a big one pay for cold caches.

Inputs are random tensors of each model's input shape (latency does not depend on the values); dynamic dimensions
are 1 for the batch and the FieldLine ``input_size`` (else 320), or the size given per file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edge_agent.detectors.precision import cpu_summary, cpu_text

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
           "tensor(int8)": np.int8, "tensor(double)": np.float64}
_QDQ_PARAMS = {"QuantizeLinear", "DequantizeLinear"}


def count_parameters(path: str | Path) -> int:
    """Elements of all graph initializers, without the scales/zero points of Q/DQ nodes."""
    model = onnx.load(str(path), load_external_data=False)
    qparams = {n.input[i] for n in model.graph.node if n.op_type in _QDQ_PARAMS for i in (1, 2) if len(n.input) > i}
    total = 0
    for init in model.graph.initializer:
        if init.name not in qparams:
            total += int(np.prod(init.dims)) if len(init.dims) else 1
    return total


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    # interleaved sessions: a pool that spin-waits after its run would steal the cores from the next model
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _feeds(sess: ort.InferenceSession, rng: np.random.Generator,
           hw: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Random inputs of each input's shape; free dimensions: batch 1, then ``hw`` or the metadata's square size."""
    meta = sess.get_modelmeta().custom_metadata_map
    side = int(meta.get("fieldline.input_size", 320))
    feeds = {}
    for inp in sess.get_inputs():
        free = [1, 3, *(hw or (side, side))] if len(inp.shape) == 4 else [1] + [side] * (len(inp.shape) - 1)
        shape = [d if isinstance(d, int) and d > 0 else free[i] for i, d in enumerate(inp.shape)]
        dtype = _DTYPES.get(inp.type, np.float32)
        x = rng.random(shape, dtype=np.float32)
        feeds[inp.name] = (x * 255).astype(dtype) if np.issubdtype(dtype, np.integer) else x.astype(dtype)
    return feeds


def square_if_larger(path: Path, side: int) -> tuple[int, int] | None:
    """(side, side) for a dynamic-size FieldLine detector whose own input is larger than ``side``, else None
    (its own size): how a file is timed beside the anchors, which run at 320. ``side`` <= 0: always None."""
    if side <= 0:
        return None
    from edge_agent.detectors.onnx_detector import OnnxDetector
    from edge_agent.detectors.session import ModelLoadError

    try:
        det = OnnxDetector(path)
    except (ModelLoadError, ValueError):  # not a detector (the anomaly model): its own size
        return None
    return (side, side) if det.dynamic_size and det.input_size > side else None


def bench_models(files: Sequence[str | Path], threads: Sequence[int] = (1, 2), runs: int = 50, warmup: int = 5,
                 seed: int = 0, progress: Callable[[str], None] | None = None,
                 input_hw: Sequence[tuple[int, int] | None] | None = None, block: int = 25) -> dict[str, Any]:
    """Median/p90 ms per model and thread count, parameters and file size, all from one interleaved run.

    ``input_hw``: per file, the (height, width) to feed a dynamic-size input (None: its metadata's square).
    ``block``: timed runs of one model in a row (after one untimed run); ``runs`` is rounded up to a multiple.
    """
    if block < 1:
        raise ValueError(f"block {block}: must be at least 1")
    block = min(block, runs)
    paths = [Path(f) for f in files]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: model file not found")
    rng = np.random.default_rng(seed)
    models: dict[str, dict[str, Any]] = {}
    names = []
    for p in paths:
        name = p.name if p.name not in models else str(p)
        names.append(name)
        models[name] = {"path": str(p), "bytes": p.stat().st_size, "parameters": count_parameters(p),
                        "latency": {}}
    for t in threads:
        if progress:
            progress(f"{t} thread(s): loading {len(paths)} models")
        sessions = [_session(p, t) for p in paths]
        feeds = [_feeds(s, rng, hw) for s, hw in zip(sessions, input_hw or [None] * len(paths))]
        for s, f in zip(sessions, feeds):
            for _ in range(warmup):
                s.run(None, f)
        times: list[list[float]] = [[] for _ in paths]
        rounds = -(-runs // block)
        for r in range(rounds):
            for i, (s, f) in enumerate(zip(sessions, feeds)):
                s.run(None, f)  # refills the caches after the previous model
                for _ in range(block):
                    t0 = time.perf_counter()
                    s.run(None, f)
                    times[i].append((time.perf_counter() - t0) * 1000)
            if progress and (r + 1) % max(1, rounds // 4) == 0:
                progress(f"{t} thread(s): {(r + 1) * block}/{rounds * block} runs")
        for name, ms in zip(names, times):
            models[name]["latency"][str(t)] = {"median_ms": round(float(np.median(ms)), 2),
                                               "p90_ms": round(float(np.percentile(ms, 90)), 2)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"runs": rounds * block, "block": block, "threads": [int(t) for t in threads],
            "onnxruntime": ort.__version__, "cpu_count": os.cpu_count(), "cpu": cpu_summary(),
            "loadavg_1m": None if load is None else round(load, 2),
            "models": models}


def bench_table(result: dict[str, Any], extra: dict[str, dict[str, str]] | None = None, title: str = "latency"):
    """A rich Table: one row per model, median/p90 per thread count, parameters, size (+ extra columns)."""
    from rich.table import Table

    cpu = f"; {cpu_text(result['cpu'])}" if "cpu" in result else ""
    table = Table(title=f"{title} ({result['runs']} runs interleaved in blocks of {result.get('block', 1)}, "
                        f"onnxruntime {result['onnxruntime']}, load {result['loadavg_1m']}{cpu})")
    table.add_column("model")
    for t in result["threads"]:
        table.add_column(f"{t}T median ms", justify="right")
        table.add_column(f"{t}T p90 ms", justify="right")
    table.add_column("params", justify="right")
    table.add_column("size MB", justify="right")
    extra_cols = sorted({k for v in (extra or {}).values() for k in v})
    for col in extra_cols:
        table.add_column(col, justify="right")
    for name, m in result["models"].items():
        cells = []
        for t in result["threads"]:
            lat = m["latency"][str(t)]
            cells += [f"{lat['median_ms']:.2f}", f"{lat['p90_ms']:.2f}"]
        table.add_row(name, *cells, f"{m['parameters'] / 1e6:.2f}M", f"{m['bytes'] / 1e6:.2f}",
                      *((extra or {}).get(name, {}).get(c, "") for c in extra_cols))
    return table
