"""What a camera pays per frame for each model: the detector's whole ``detect()`` on a 720p picture.

``detect()`` letterboxes the BGR frame to the model's input, runs the session, decodes the outputs and runs NMS.
Each model runs at its shipped input size (a zoo file at its metadata's ``input_size``, an anchor at its fixed
320), with 1 onnxruntime thread, on the same synthetic greenhouse frame; runs are interleaved across models in
blocks (one untimed run first) like ``models.detect.bench.bench_models``. The anchors have random weights: their raw
outputs are noise, so their decode + NMS share can differ from trained weights'.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.agent_runs import agent_config
from bench.pan_video import pan_frames
from edge_agent.detectors import build_detector
from edge_agent.detectors.base import Detector
from edge_agent.detectors.session import ModelLoadError

COCO_STYLE = [f"class_{i}" for i in range(80)]


def model_spec(path: Path, anchor: bool) -> dict:
    if not anchor:
        return {"path": str(path), "threads": 1}
    return {"type": "yolo_e2e" if "e2e" in path.stem else "yolov8", "path": str(path), "labels": COCO_STYLE,
            "threads": 1}


def load_detectors(zoo: list[Path], anchors: list[Path]) -> tuple[dict[str, Detector], dict[str, str]]:
    """Detectors by file name, and the files skipped with the reason (the anomaly model is no detector)."""
    detectors, skipped = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for path, anchor in [(p, False) for p in zoo] + [(p, True) for p in anchors]:
            try:
                config = agent_config(model_spec(path, anchor), "unused.mp4", Path(tmp), ("127.0.0.1", 1))
                detectors[path.name] = build_detector(config.model)
            except (ModelLoadError, ValueError) as exc:
                skipped[path.name] = str(exc).splitlines()[0][:160]
    return detectors, skipped


def time_detect(detectors: dict[str, Detector], runs: int = 100, block: int = 25,
                frame: np.ndarray | None = None) -> dict[str, dict]:
    """Median and p90 ms of ``detect(frame)`` per detector (wall clock; CPU time of this process beside it),
    interleaved in blocks."""
    if frame is None:
        frame = next(pan_frames(1, 1280, 720))
    block = max(1, min(block, runs))
    times: dict[str, list[float]] = {name: [] for name in detectors}
    cpu: dict[str, list[float]] = {name: [] for name in detectors}
    for det in detectors.values():
        det.detect(frame)
    for _ in range(-(-runs // block)):
        for name, det in detectors.items():
            det.detect(frame)  # refills the caches after the previous model
            for _ in range(block):
                started, cpu_started = time.perf_counter(), time.process_time()
                det.detect(frame)
                times[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
    out = {}
    for name, det in detectors.items():
        size = det.input_size
        out[name] = {"median_ms": round(float(np.median(times[name])), 2),
                     "p90_ms": round(float(np.percentile(times[name], 90)), 2),
                     "cpu_median_ms": round(float(np.median(cpu[name])), 2),
                     "input": "x".join(map(str, size)) if isinstance(size, tuple) else str(size),
                     "frame": f"{frame.shape[1]}x{frame.shape[0]}", "runs": len(times[name])}
    return out
