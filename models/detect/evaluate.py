"""COCO-style mAP (pycocotools) of a FieldLine ONNX model on fresh synthetic frames or a dataset split."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edge_agent.detectors.onnx_detector import OnnxDetector
from models.data.sources import DataSource

EVAL_CONF = 0.001  # keep nearly every detection: mAP integrates over the whole precision-recall curve
EVAL_IOU = 0.5  # class-wise NMS IoU, as the edge agent runs it
SYNTH_SOURCES = {"synth:tomato", "synth:surface", "synth:tomato-shift"}


def synth_frames(data: str, count: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Yield (BGR image, boxes xyxy, label names); frame i is seeded with [seed, i]."""
    if data not in SYNTH_SOURCES:
        raise ValueError(f"unknown data source {data!r}; supported: {', '.join(sorted(SYNTH_SOURCES))}")
    yield from DataSource.parse(data).frames("test", count, seed)


def coco_map(gts: list[tuple[np.ndarray, list[str]]], dets: list[tuple[np.ndarray, np.ndarray, list[str]]],
             labels: tuple[str, ...], size: tuple[int, int] = (640, 480)) -> dict[str, Any]:
    """gts: per image (boxes, labels); dets: per image (boxes, scores, labels). Returns mAP dict."""
    labels = tuple(dict.fromkeys([*labels, *(lab for _, gl in gts for lab in gl)]))  # data may name more classes
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


def class_agnostic_map50(gts: list[tuple[np.ndarray, list[str]]],
                         dets: list[tuple[np.ndarray, np.ndarray, list[str]]]) -> float:
    """mAP50 with every label replaced by one: how well the model finds objects, whatever their class.

    The gap to the class-wise mAP50 is what classification costs (e.g. ripeness stages confused).
    """
    one_gts = [(b, ["object"] * len(labs)) for b, labs in gts]
    one_dets = [(b, s, ["object"] * len(labs)) for b, s, labs in dets]
    return coco_map(one_gts, one_dets, ("object",))["map50"]


def run_detector(det: OnnxDetector, frames: Iterable[tuple[np.ndarray, np.ndarray, list[str]]],
                 progress: Callable[[int], None] | None = None) -> tuple[list, list]:
    """-> (ground truth per image, predictions per image) in the shapes of :func:`coco_map`."""
    gts, dets = [], []
    for i, (img, boxes, labs) in enumerate(frames):
        d = det.detect(img)
        gts.append((np.asarray(boxes, np.float32).reshape(-1, 4), list(labs)))
        dets.append((d.xyxy, d.confidence, d.label_names()))
        if progress:
            progress(i + 1)
    return gts, dets


def frames_map50(model_path: str | Path, frames: Sequence[tuple[np.ndarray, np.ndarray, list[str]]]) -> float:
    """mAP50 as :func:`evaluate` reports it by default, on frames already in memory: for comparing many files
    on the same frames without rendering or decoding them again."""
    det = OnnxDetector(model_path, conf_threshold=EVAL_CONF, iou_threshold=EVAL_IOU)
    gts, dets = run_detector(det, frames)
    return coco_map(gts, dets, det.labels)["map50"]


def evaluate(model_path: str | Path, data: str | DataSource = "synth:tomato", count: int | None = 300,
             seed: int = 9001, split: str = "test", conf_threshold: float = EVAL_CONF, iou_threshold: float = EVAL_IOU,
             threads: int = 1, progress: Callable[[int, int], None] | None = None,
             plots_dir: str | Path | None = None, input_size: int | None = None,
             letterbox: str = "auto") -> dict[str, Any]:
    """mAP50 / mAP50-95 overall and per class for ``model_path``.

    ``input_size`` / ``letterbox``: run a dynamic-size model as the edge agent's ``model.input_size`` /
    ``model.letterbox`` would (see :class:`OnnxDetector`), to pick them on your own validation pictures.

    ``data``: ``synth:tomato`` / ``synth:surface`` (``count`` fresh frames from ``seed``) or a
    :class:`DataSource` for a dataset (its ``split``; ``count`` None = all). With ``plots_dir``, PR curves
    and a confusion matrix are written there as PNG (see :mod:`models.detect.plots`).
    """
    src = data if isinstance(data, DataSource) else DataSource.parse(data)
    det = OnnxDetector(model_path, conf_threshold=conf_threshold, iou_threshold=iou_threshold, threads=threads,
                       input_size=input_size, letterbox=letterbox)  # type: ignore[arg-type]
    total = count if src.is_synthetic else min(src.split_size(split), count or 10 ** 9)
    gts, dets = run_detector(det, src.frames(split, total, seed),
                             (lambda i: progress(i, total)) if progress else None)
    result = coco_map(gts, dets, det.labels)
    result["map50_agnostic"] = class_agnostic_map50(gts, dets)
    data_labels = src.labels()
    if set(det.labels) != set(data_labels):
        result["warning"] = f"model labels {list(det.labels)} differ from the data's {list(data_labels)}"
    result.update({"images": len(gts), "data": src.describe(), "model": str(model_path), "sha256": det.sha256,
                   "input_size": det.input_size, "letterbox": det.letterbox, "dynamic_size": det.dynamic_size,
                   "conf_threshold": conf_threshold, "nms_iou": iou_threshold,
                   "flips": det.metadata.get("flips", "none")})
    if src.is_synthetic:
        result["seed"] = seed
    else:
        result["split"] = split
    if plots_dir is not None:
        from models.detect.plots import write_eval_plots

        labels = list(dict.fromkeys([*det.labels, *data_labels]))
        plots = write_eval_plots(plots_dir, gts, dets, labels)
        result["plots"] = {"pr_curves": plots["pr_curves"], "confusion_matrix": plots["confusion_matrix_png"]}
    return result
