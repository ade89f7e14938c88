"""COCO-style mAP (pycocotools) of any FieldLine ONNX model on freshly generated synthetic data."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edge_agent.detectors.onnx_detector import OnnxDetector
from models.synth.tomato import LABELS, random_scene, render

SYNTH_SOURCES = {"synth:tomato"}


def synth_frames(data: str, count: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Yield (BGR image, boxes xyxy, label names); frame i is seeded with [seed, i]."""
    if data not in SYNTH_SOURCES:
        raise ValueError(f"unknown data source {data!r}; supported: {', '.join(sorted(SYNTH_SOURCES))}")
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        r = render(random_scene(rng), rng)
        yield r.image, r.boxes, r.labels


def coco_map(gts: list[tuple[np.ndarray, list[str]]], dets: list[tuple[np.ndarray, np.ndarray, list[str]]],
             labels: tuple[str, ...], size: tuple[int, int] = (640, 480)) -> dict[str, Any]:
    """gts: per image (boxes, labels); dets: per image (boxes, scores, labels). Returns mAP dict."""
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(labels)]
    images, anns, results = [], [], []
    for img_id, ((gb, gl), (db, ds, dl)) in enumerate(zip(gts, dets), start=1):
        images.append({"id": img_id, "width": size[0], "height": size[1]})
        for b, lab in zip(gb, gl):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": labels.index(lab) + 1,
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": 0})
        for b, s, lab in zip(db, ds, dl):
            results.append({"image_id": img_id, "category_id": labels.index(lab) + 1, "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": cats}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if not results:
            return {"map50": 0.0, "map50_95": 0.0, "instances": len(anns),
                    "per_class": {n: {"ap50": 0.0, "ap50_95": 0.0} for n in labels}}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, 300]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]

    def ap(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else 0.0

    per_class = {n: {"ap50": round(ap(prec[0, :, k, 0, -1]), 4), "ap50_95": round(ap(prec[:, :, k, 0, -1]), 4)}
                 for k, n in enumerate(labels)}
    return {"map50": round(ap(prec[0, :, :, 0, -1]), 4), "map50_95": round(ap(prec[:, :, :, 0, -1]), 4),
            "per_class": per_class, "instances": len(anns)}


def evaluate(model_path: str | Path, data: str = "synth:tomato", count: int = 300, seed: int = 9001,
             conf_threshold: float = 0.001, iou_threshold: float = 0.5, threads: int = 1,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """mAP50 / mAP50-95 overall and per class for ``model_path`` on ``count`` fresh synthetic frames."""
    det = OnnxDetector(model_path, conf_threshold=conf_threshold, iou_threshold=iou_threshold, threads=threads)
    gts, dets = [], []
    size = (640, 480)
    for i, (img, boxes, labs) in enumerate(synth_frames(data, count, seed)):
        size = (img.shape[1], img.shape[0])
        d = det.detect(img)
        gts.append((boxes, labs))
        dets.append((d.xyxy, d.confidence, d.label_names()))
        if progress:
            progress(i + 1, count)
    result = coco_map(gts, dets, det.labels, size)
    labels = tuple(LABELS)
    if det.labels != labels:
        result["warning"] = f"model labels {det.labels} differ from generator labels {labels}"
    result.update({"images": count, "data": data, "seed": seed, "model": str(model_path),
                   "sha256": det.sha256})
    return result
