"""Counting threshold: the score above which a detection is counted, picked so that counts match the labels.

mAP does not depend on a score threshold; a counter does. Too low, and weak duplicates and half-hidden fruit
(that the labels leave out) are counted; too high, and real fruit are missed. The edge agent counts the
boxes above ``model.conf_threshold`` after class-agnostic NMS, so the model is run here exactly as the edge
runs it (the file's input size, auto letterbox, agnostic NMS) on labelled frames it was not trained on, once
at a low score floor: counting the boxes above a threshold after NMS is the same as NMS after thresholding
(a box is only suppressed by a higher-scoring one), so every candidate threshold is read from that one pass.
The threshold with the smallest mean absolute count error per frame wins (ties: the smaller mean bias).

The result is written into the model file (``fieldline.count_conf`` and a JSON summary): the edge agent uses
it when the config leaves ``model.conf_threshold`` unset.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge_agent.detectors.onnx_detector import UNCALIBRATED_CONF
from edge_agent.detectors.session import COUNT_CALIBRATION_META, COUNT_CONF_META, META_PREFIX
from models.data.sources import DataSource

COUNT_CONF_KEY = META_PREFIX + COUNT_CONF_META
SUMMARY_KEY = META_PREFIX + COUNT_CALIBRATION_META
SCORE_FLOOR = 0.05
CANDIDATES = tuple(round(0.10 + 0.01 * i, 2) for i in range(81))  # 0.10 .. 0.90
SHOWN = tuple(round(0.15 + 0.05 * i, 2) for i in range(14))  # rows of the printed table: 0.15 .. 0.80


def count_rows(scores: list[np.ndarray], labelled: np.ndarray,
               thresholds: tuple[float, ...] = CANDIDATES) -> list[dict[str, float]]:
    """Per threshold: mean count, mean bias (counted - labelled), mean absolute error, share of exact frames."""
    rows = []
    for t in thresholds:
        err = np.array([np.count_nonzero(s >= t) for s in scores]) - labelled
        rows.append({"conf": t, "mean_count": float((err + labelled).mean()), "bias": float(err.mean()),
                     "mae": float(np.abs(err).mean()), "exact": float((err == 0).mean())})
    return rows


def best_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return min(rows, key=lambda r: (round(r["mae"], 6), abs(r["bias"]), r["conf"]))


@dataclass
class ScoredFrames:
    """One pass of a model over labelled frames at the score floor: what every threshold is read from."""

    detector: Any  # the OnnxDetector that ran (input size, letterbox, labels, sha256)
    source: DataSource
    scores: list[np.ndarray]  # per frame: the scores of the boxes kept by class-agnostic NMS
    names: list[list[str]]  # per frame: their labels
    labels: list[list[str]]  # per frame: the labelled objects


def score_frames(model_path: str | Path, data: str | DataSource, count: int | None, seed: int, split: str,
                 threads: int = 1, input_size: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ScoredFrames:
    """Run ``model_path`` as the edge agent runs it (at ``input_size``, default the file's) on labelled frames:
    synthetic ``count`` from ``seed``, or a dataset's ``split``."""
    from edge_agent.detectors.onnx_detector import OnnxDetector

    src = data if isinstance(data, DataSource) else DataSource.parse(data)
    det = OnnxDetector(model_path, conf_threshold=SCORE_FLOOR, threads=threads, agnostic_nms=True,
                       input_size=input_size)
    total = count if src.is_synthetic else min(src.split_size(split), count or 10 ** 9)
    if not total:
        raise ValueError(f"{src.describe()}: no {split} images to calibrate on")
    out = ScoredFrames(det, src, [], [], [])
    for i, (img, _, labs) in enumerate(src.frames(split, total, seed)):
        d = det.detect(img)
        out.scores.append(d.confidence.astype(np.float64))
        out.names.append(d.label_names())
        out.labels.append(list(labs))
        if progress:
            progress(i + 1, total)
    return out


def calibrate_count_conf(model_path: str | Path, data: str | DataSource = "synth:tomato", count: int | None = 300,
                         seed: int = 777, split: str = "val", threads: int = 1, input_size: int | None = None,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Pick the counting threshold of ``model_path`` on labelled frames (see :func:`score_frames`).
    Returns the choice, its errors, the errors at the uncalibrated 0.35 and a table."""
    run = score_frames(model_path, data, count, seed, split, threads, input_size, progress)
    det, src, scores, names = run.detector, run.source, run.scores, run.names
    labelled = [len(labs) for labs in run.labels]
    labelled_by_class = Counter(lab for labs in run.labels for lab in labs)
    truth = np.array(labelled)
    rows = count_rows(scores, truth)
    best = best_row(rows)
    counted = Counter(n for s, ns in zip(scores, names) for v, n in zip(s, ns) if v >= best["conf"])
    per_class_bias = {lab: round((counted[lab] - labelled_by_class[lab]) / len(scores), 3)
                      for lab in det.labels}
    result: dict[str, Any] = {
        "count_conf": best["conf"], "mae": round(best["mae"], 3), "bias": round(best["bias"], 3),
        "exact": round(best["exact"], 3), "labelled_per_image": round(float(truth.mean()), 3),
        "per_class_bias": per_class_bias,
        "uncalibrated": {k: round(v, 3) for k, v in count_rows(scores, truth, (UNCALIBRATED_CONF,))[0].items()},
        "images": len(scores), "data": src.describe(), "input_size": det.input_size, "letterbox": det.letterbox,
        "nms": "agnostic", "model": str(model_path), "sha256": det.sha256,
        "table": [{k: round(v, 3) for k, v in r.items()} for r in rows
                  if r["conf"] in SHOWN or r["conf"] in (best["conf"], UNCALIBRATED_CONF)],
    }
    result.update({"seed": seed} if src.is_synthetic else {"split": split})
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """What goes into the file: enough to tell how the threshold was picked (no table, no paths)."""
    keep = ("count_conf", "mae", "bias", "exact", "labelled_per_image", "per_class_bias", "uncalibrated",
            "images", "data", "seed", "split", "input_size", "letterbox", "nms")
    return {k: result[k] for k in keep if k in result}


def write_count_conf(model_path: str | Path, result: dict[str, Any], out: str | Path | None = None) -> Path:
    """Store the picked counting threshold in the ONNX metadata of ``model_path`` (in place unless ``out``)."""
    return write_threshold(model_path, result, {COUNT_CONF_KEY: f"{result['count_conf']:.2f}",
                                                SUMMARY_KEY: json.dumps(summary(result))}, out)


def write_threshold(model_path: str | Path, result: dict[str, Any], meta: dict[str, str],
                    out: str | Path | None = None) -> Path:
    """Write ``meta`` into the file ``result`` was calibrated on; refuses when the file changed since (the
    threshold belongs to those scores)."""
    import onnx

    from edge_agent.detectors.session import file_sha256
    from models.detect.export import set_metadata

    src = Path(model_path)
    if file_sha256(src) != result["sha256"]:
        raise ValueError(f"{src}: the file changed since it was calibrated (sha256 differs): calibrate it again")
    model = onnx.load(str(src))
    set_metadata(model, meta)
    dst = Path(out) if out is not None else src
    onnx.save(model, str(dst))
    return dst


def count_table(result: dict[str, Any]) -> str:
    """The calibration as a Markdown table (every 0.05, the uncalibrated 0.35 and the pick)."""
    lines = ["| conf | mean count (labelled %.2f) | bias | mean abs error | exact frames |" % result["labelled_per_image"],
             "|---|---|---|---|---|"]
    for r in result["table"]:
        mark = " (picked)" if r["conf"] == result["count_conf"] else ""
        lines.append(f"| {r['conf']:.2f}{mark} | {r['mean_count']:.2f} | {r['bias']:+.2f} | {r['mae']:.2f} "
                     f"| {r['exact']:.0%} |")
    return "\n".join(lines)
