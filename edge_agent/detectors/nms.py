"""Non-maximum suppression in numpy (class-wise), shared by all decoders."""

from __future__ import annotations

import cv2
import numpy as np


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS; returns kept indices sorted by descending score."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[i], boxes[rest]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
                max_det: int = 300) -> np.ndarray:
    """Class-wise greedy NMS; returns kept indices by descending score.

    Uses OpenCV's C++ ``NMSBoxesBatched`` (same greedy rule as :func:`nms`, ~20x faster with the
    thousands of candidates an mAP evaluation at conf 0.001 produces).
    """
    if len(boxes) < 2:  # nothing to suppress
        return np.zeros(min(len(boxes), max_det), dtype=np.int64)
    xywh = np.array(boxes, np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh, np.asarray(scores, np.float32), np.asarray(class_ids, np.int32),
                                   0.0, float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    keep = keep[np.argsort(-np.asarray(scores)[keep], kind="stable")]
    return keep[:max_det]


def batched_nms_reference(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                          iou_threshold: float) -> np.ndarray:
    """Pure-numpy class-wise NMS (coordinate-offset trick), the reference for tests."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    span = float(boxes.max() - boxes.min()) + 1.0
    return nms(boxes + (class_ids.astype(np.float32) * span)[:, None], scores, iou_threshold)
