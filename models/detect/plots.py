"""Evaluation plots drawn with OpenCV (no matplotlib): PR curves per class and a confusion matrix.

Inputs use the shapes of :func:`models.detect.evaluate.coco_map`:
``gt`` per image ``(boxes xyxy (N, 4), label names)``; ``predictions`` per image ``(boxes, scores, label names)``.

Confusion matrix: rows are the true class, columns the predicted class, both with a last ``background`` entry.
Per image, predictions with score >= ``conf`` are matched one to one to ground truth boxes with IoU >= ``iou``
(class-agnostic, highest IoU first). A matched pair counts at [true, predicted]; an unmatched ground truth box
at [true, background] (missed); an unmatched prediction at [background, predicted] (false positive).

PR curves: per class, COCO-style greedy matching (predictions by descending score, each to the unmatched same-class
box of highest IoU >= ``iou``); AP is the area under the monotone precision envelope (all-point interpolation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

GroundTruth = Sequence[tuple[np.ndarray, Sequence[str]]]
Predictions = Sequence[tuple[np.ndarray, np.ndarray, Sequence[str]]]
_PALETTE = [(60, 180, 75), (0, 140, 255), (40, 40, 220), (200, 120, 0), (170, 30, 150), (128, 128, 0),
            (90, 90, 90), (0, 200, 200), (200, 0, 200), (30, 100, 30)]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def confusion_matrix(gt: GroundTruth, predictions: Predictions, labels: Sequence[str], conf: float = 0.25,
                     iou: float = 0.5) -> np.ndarray:
    """(C + 1, C + 1) int counts; rows true class, columns predicted class, index C = background."""
    c = len(labels)
    index = {n: i for i, n in enumerate(labels)}
    cm = np.zeros((c + 1, c + 1), np.int64)
    for (gb, gl), (pb, ps, pl) in zip(gt, predictions):
        keep = np.asarray(ps, np.float64) >= conf
        pb = np.asarray(pb, np.float64).reshape(-1, 4)[keep]
        pl = [lab for lab, k in zip(pl, keep) if k]
        g_cls = [index[lab] for lab in gl]
        p_cls = [index[lab] for lab in pl]
        ious = box_iou(gb, pb)
        gi, pi = np.nonzero(ious >= iou)
        order = np.argsort(-ious[gi, pi], kind="stable")
        used_g, used_p = set(), set()
        for k in order:
            g, p = int(gi[k]), int(pi[k])
            if g not in used_g and p not in used_p:
                used_g.add(g)
                used_p.add(p)
                cm[g_cls[g], p_cls[p]] += 1
        for g, cls in enumerate(g_cls):
            if g not in used_g:
                cm[cls, c] += 1
        for p, cls in enumerate(p_cls):
            if p not in used_p:
                cm[c, cls] += 1
    return cm


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the monotone precision envelope (all-point interpolation)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def pr_curves(gt: GroundTruth, predictions: Predictions, labels: Sequence[str], iou: float = 0.5
              ) -> dict[str, dict[str, Any]]:
    """Per class: precision and recall after each prediction (by descending score), scores, AP, n_gt."""
    out = {}
    for name in labels:
        n_gt = sum(sum(1 for lab in gl if lab == name) for _, gl in gt)
        entries = []  # (score, image, box)
        for img, (pb, ps, pl) in enumerate(predictions):
            pb = np.asarray(pb, np.float64).reshape(-1, 4)
            entries += [(float(s), img, pb[k]) for k, (s, lab) in enumerate(zip(ps, pl)) if lab == name]
        entries.sort(key=lambda e: -e[0])
        gt_boxes = [np.asarray(gb, np.float64).reshape(-1, 4)[[lab == name for lab in gl]] for gb, gl in gt]
        used = [np.zeros(len(b), bool) for b in gt_boxes]
        tp = np.zeros(len(entries))
        for k, (_, img, box) in enumerate(entries):
            if len(gt_boxes[img]) == 0:
                continue
            ious = box_iou(box[None], gt_boxes[img])[0]
            ious[used[img]] = -1
            best = int(np.argmax(ious))
            if ious[best] >= iou:
                used[img][best] = True
                tp[k] = 1
        ctp = np.cumsum(tp)
        precision = ctp / np.arange(1, len(entries) + 1) if entries else np.zeros(0)
        recall = ctp / n_gt if n_gt else np.zeros(len(entries))
        out[name] = {"precision": precision, "recall": recall, "scores": np.array([e[0] for e in entries]),
                     "ap": average_precision(recall, precision) if n_gt else 0.0, "n_gt": n_gt}
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=(30, 30, 30),
          thick: int = 1) -> None:
    cv2.putText(img, text, org, _FONT, scale, colour, thick, cv2.LINE_AA)


def draw_pr(curves: dict[str, dict[str, Any]], path: str | Path, title: str = "Precision-recall (IoU 0.5)") -> Path:
    """PR curves of all classes on one PNG (white background, legend with AP)."""
    w, h, left, top, right, bottom = 720, 560, 60, 40, 200, 50
    img = np.full((h, w, 3), 255, np.uint8)
    pw, ph = w - left - right, h - top - bottom

    def xy(r: float, p: float) -> tuple[int, int]:
        return int(left + r * pw), int(top + (1 - p) * ph)

    for v in np.linspace(0, 1, 6):
        cv2.line(img, xy(v, 0), xy(v, 1), (225, 225, 225), 1)
        cv2.line(img, xy(0, v), xy(1, v), (225, 225, 225), 1)
        _text(img, f"{v:.1f}", (xy(v, 0)[0] - 10, top + ph + 18), 0.4)
        _text(img, f"{v:.1f}", (left - 32, xy(0, v)[1] + 5), 0.4)
    cv2.rectangle(img, xy(0, 1), xy(1, 0), (60, 60, 60), 1)
    _text(img, "recall", (left + pw // 2 - 20, h - 12))
    _text(img, "precision", (4, top - 12))
    _text(img, title, (left + 60, 24), 0.55)
    for k, (name, c) in enumerate(curves.items()):
        colour = _PALETTE[k % len(_PALETTE)]
        if len(c["recall"]):
            r = np.concatenate([[0.0], c["recall"]])
            p = np.concatenate([[c["precision"][0]], c["precision"]])
            pts = np.array([xy(float(a), float(b)) for a, b in zip(r, p)], np.int32)
            cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
        ly = top + 20 + 22 * k
        cv2.line(img, (left + pw + 12, ly - 4), (left + pw + 32, ly - 4), colour, 3)
        _text(img, f"{name[:12]} AP {c['ap']:.3f}", (left + pw + 38, ly), 0.42)
    mean_ap = float(np.mean([c["ap"] for c in curves.values()])) if curves else 0.0
    _text(img, f"mean AP {mean_ap:.3f}", (left + pw + 14, top + 30 + 22 * len(curves)), 0.45, thick=1)
    path = Path(path)
    cv2.imwrite(str(path), img)
    return path


def _vertical_text(text: str, height: int, scale: float = 0.45) -> np.ndarray:
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
    strip = np.full((th + base + 4, max(height, tw + 4), 3), 255, np.uint8)
    _text(strip, text, (2, th + 2), scale)  # left end of the strip = bottom after the rotation
    return np.ascontiguousarray(np.rot90(strip))


def draw_confusion(cm: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "Confusion matrix") -> Path:
    """Counts in each cell, shaded by the row-normalised share (rows: true class; columns: predicted)."""
    names = [*labels, "background"]
    n = len(names)
    cell = max(48, min(80, 600 // n))
    left, top = 130, 140
    w, h = max(left + n * cell + 20, 480), top + n * cell + 40
    img = np.full((h, w, 3), 255, np.uint8)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.where(rows > 0, cm / np.maximum(rows, 1), 0.0)
    for i in range(n):
        for j in range(n):
            x, y = left + j * cell, top + i * cell
            s = float(share[i, j])
            colour = (int(255 - 120 * s), int(255 - 190 * s), int(255 - 230 * s))  # white -> dark blue (BGR)
            cv2.rectangle(img, (x, y), (x + cell, y + cell), colour, -1)
            cv2.rectangle(img, (x, y), (x + cell, y + cell), (200, 200, 200), 1)
            txt = str(int(cm[i, j]))
            (tw, th), _ = cv2.getTextSize(txt, _FONT, 0.5, 1)
            _text(img, txt, (x + (cell - tw) // 2, y + (cell + th) // 2), 0.5,
                  (255, 255, 255) if s > 0.55 else (20, 20, 20))
        _text(img, names[i][:16], (6, top + i * cell + cell // 2 + 5), 0.45)
        strip = _vertical_text(names[i][:16], top - 30)
        sh, sw = strip.shape[:2]
        x0 = left + i * cell + (cell - sw) // 2
        img[top - 4 - sh:top - 4, x0:x0 + sw] = strip
    _text(img, title, (6, 20), 0.5)
    _text(img, "rows: true class, columns: predicted class", (6, 40), 0.42, (90, 90, 90))
    _text(img, "predicted", (left + (n * cell) // 2 - 30, h - 14), 0.45)
    path = Path(path)
    cv2.imwrite(str(path), img)
    return path


def write_eval_plots(out_dir: str | Path, gt: GroundTruth, predictions: Predictions, labels: Sequence[str],
                     conf: float = 0.25, iou: float = 0.5) -> dict[str, Any]:
    """Write ``pr_curves.png``, ``confusion_matrix.png`` and ``eval_plots.json`` under ``out_dir``.

    Returns the file paths, the confusion matrix (nested lists) and per-class AP at ``iou``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(labels)
    curves = pr_curves(gt, predictions, labels, iou)
    cm = confusion_matrix(gt, predictions, labels, conf, iou)
    summary = {"pr_curves": str(draw_pr(curves, out / "pr_curves.png", f"Precision-recall (IoU {iou:g})")),
               "confusion_matrix_png": str(draw_confusion(cm, labels, out / "confusion_matrix.png",
                                                          f"Confusion matrix (score >= {conf:g}, IoU >= {iou:g})")),
               "labels": [*labels, "background"], "confusion_matrix": cm.tolist(), "conf": conf, "iou": iou,
               "ap": {n: round(c["ap"], 4) for n, c in curves.items()}}
    (out / "eval_plots.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
