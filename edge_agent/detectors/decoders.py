"""Output decoders per detector family: pure numpy, raw ONNX outputs -> candidate boxes in input pixels.

Every decoder returns :class:`Candidates` (xyxy in network-input pixels, a score and a class id per box,
already filtered by the score threshold). Letterbox undo, class-wise NMS and the detection cap are shared
and live in :mod:`edge_agent.detectors.onnx_generic`.

Layouts (one image, batch dimension 1 or absent; ``C`` classes):

- ``yolov5``:  [N, 5 + C]  cx, cy, w, h (input px), objectness, class probabilities; score = obj * cls.
- ``yolov8``:  [4 + C, N]  cx, cy, w, h then class probabilities, no objectness (YOLOv8, YOLO11, YOLO26
  without the end-to-end head); the transposed [N, 4 + C] is accepted too.
- ``yolo_e2e``: [K, 6]     x1, y1, x2, y2 (input px), score, class (YOLO26 end-to-end, YOLOv10); no NMS.
- ``yolox``:   [N, 5 + C]  like yolov5 when exported with ``decode_in_inference``; otherwise the raw head:
  x, y offsets in grid cells, log w, log h, objectness and class probabilities, anchors ordered
  stride by stride (8, 16, 32), row-major inside a level.
- ``nanodet``: [N, C + 4 * (reg_max + 1)] class probabilities then, per side (left, top, right, bottom),
  ``reg_max + 1`` logits of a discrete distance distribution in units of the stride (NanoDet-Plus);
  or separate score [N, C] and box [N, 4 * (reg_max + 1)] outputs, one pair per level or concatenated
  (PicoDet exports without post-processing). The distance is the softmax-weighted mean bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class OutputLayoutError(RuntimeError):
    """The model's raw output does not have the layout its decoder ``type`` expects."""


@dataclass
class Candidates:
    """Boxes above the score threshold, in network-input pixels, before NMS."""

    xyxy: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int64
    needs_nms: bool = True

    @classmethod
    def empty(cls, needs_nms: bool = True) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), needs_nms)

    def __len__(self) -> int:
        return len(self.scores)


def _one_image(output: np.ndarray, family: str) -> np.ndarray:
    a = np.asarray(output)
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 2:
        return a
    raise OutputLayoutError(f"{family}: expected an output of shape [1, A, B] for one image, got {list(a.shape)}")


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float32)
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _best_class(cls_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    class_id = cls_scores.argmax(1)
    return cls_scores[np.arange(len(cls_scores)), class_id], class_id


def _candidates(xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, needs_nms: bool = True) -> Candidates:
    return Candidates(np.asarray(xyxy, np.float32).reshape(-1, 4), np.asarray(scores, np.float32).reshape(-1),
                      np.asarray(class_id, np.int64).reshape(-1), needs_nms)


def _objectness_rows(rows: np.ndarray, num_classes: int, conf_threshold: float, family: str,
                     xyxy_of=cxcywh_to_xyxy) -> Candidates:
    """[N, 5 + C] rows -> candidates with score = objectness x class probability."""
    if rows.shape[1] != 5 + num_classes:
        raise OutputLayoutError(f"{family}: expected [N, 5 + {num_classes} classes] = [N, {5 + num_classes}], "
                                f"got [{rows.shape[0]}, {rows.shape[1]}]; check `labels`")
    rows = rows[rows[:, 4] >= conf_threshold]  # score <= objectness: cheap early gate
    if not len(rows):
        return Candidates.empty()
    conf, class_id = _best_class(rows[:, 5:] * rows[:, 4:5])
    keep = conf >= conf_threshold
    return _candidates(xyxy_of(rows[keep, :4]), conf[keep], class_id[keep])


def decode_yolov5(output: np.ndarray, num_classes: int, conf_threshold: float) -> Candidates:
    """YOLOv5 (and YOLOv7, YOLOX decoded): [1, N, 5 + C] with objectness gating."""
    return _objectness_rows(_one_image(output, "yolov5").astype(np.float32, copy=False), num_classes,
                            conf_threshold, "yolov5")


def decode_yolov8(output: np.ndarray, num_classes: int, conf_threshold: float) -> Candidates:
    """YOLOv8 / YOLO11 / YOLO26 (non end-to-end): [1, 4 + C, N] or [1, N, 4 + C], no objectness."""
    a = _one_image(output, "yolov8").astype(np.float32, copy=False)
    width = 4 + num_classes
    if a.shape[0] == width:  # native channels-first layout: gate before transposing anything
        conf = a[4:].max(0)
        keep = np.flatnonzero(conf >= conf_threshold)
        rows = a[:, keep].T
    elif a.shape[1] == width:
        rows = a
        keep = np.flatnonzero(rows[:, 4:].max(1) >= conf_threshold)
        rows = rows[keep]
    else:
        raise OutputLayoutError(f"yolov8: expected [1, 4 + {num_classes} classes, N] = [1, {width}, N] (or its "
                                f"transpose), got {list(np.shape(output))}; check `labels`")
    if not len(rows):
        return Candidates.empty()
    conf, class_id = _best_class(rows[:, 4:])
    return _candidates(cxcywh_to_xyxy(rows[:, :4]), conf, class_id)


def decode_yolo_e2e(output: np.ndarray, num_classes: int, conf_threshold: float) -> Candidates:
    """End-to-end heads (YOLO26 e2e, YOLOv10): [1, K, 6] x1, y1, x2, y2, score, class. Already NMS-free."""
    rows = _one_image(output, "yolo_e2e").astype(np.float32, copy=False)
    if rows.shape[1] != 6:
        raise OutputLayoutError(f"yolo_e2e: expected [1, K, 6] (x1, y1, x2, y2, score, class), got "
                                f"{list(np.shape(output))}")
    rows = rows[rows[:, 4] >= conf_threshold]
    class_id = np.rint(rows[:, 5]).astype(np.int64)
    valid = (class_id >= 0) & (class_id < num_classes)
    rows, class_id = rows[valid], class_id[valid]
    return _candidates(rows[:, :4], rows[:, 4], class_id, needs_nms=False)


@dataclass(frozen=True)
class Grid:
    """Anchor points of all pyramid levels, level by level, row-major inside a level."""

    xy: np.ndarray  # (N, 2) float32 cell indices (x, y)
    stride: np.ndarray  # (N,) float32


def make_grid(input_hw: tuple[int, int], strides: Sequence[int]) -> Grid:
    """Cells of each level: ceil(H / s) rows by ceil(W / s) columns."""
    h, w = input_hw
    xy, st = [], []
    for s in strides:
        fh, fw = math.ceil(h / s), math.ceil(w / s)
        ys, xs = np.meshgrid(np.arange(fh, dtype=np.float32), np.arange(fw, dtype=np.float32), indexing="ij")
        xy.append(np.stack([xs.ravel(), ys.ravel()], 1))
        st.append(np.full(fh * fw, s, np.float32))
    return Grid(np.concatenate(xy), np.concatenate(st))


def decode_yolox(output: np.ndarray, num_classes: int, conf_threshold: float, input_hw: tuple[int, int],
                 strides: Sequence[int] = (8, 16, 32), decoded: bool = False,
                 grid: Grid | None = None) -> Candidates:
    """YOLOX: [1, N, 5 + C]. ``decoded=False``: cx = (x + col) * s, cy = (y + row) * s, w = exp(w) * s, ..."""
    rows = _one_image(output, "yolox").astype(np.float32, copy=False)
    if decoded:
        return _objectness_rows(rows, num_classes, conf_threshold, "yolox")
    if rows.shape[1] != 5 + num_classes:
        raise OutputLayoutError(f"yolox: expected [1, N, 5 + {num_classes} classes] = [1, N, {5 + num_classes}], "
                                f"got {list(np.shape(output))}; check `labels`")
    grid = grid or make_grid(input_hw, strides)
    if rows.shape[0] != len(grid.stride):
        raise OutputLayoutError(f"yolox: {rows.shape[0]} anchors, but input {input_hw[0]}x{input_hw[1]} with strides "
                                f"{list(strides)} has {len(grid.stride)}; check input_size/strides or set decoded: true")
    keep = rows[:, 4] >= conf_threshold
    rows, xy, stride = rows[keep], grid.xy[keep], grid.stride[keep][:, None]

    def grid_decode(raw: np.ndarray) -> np.ndarray:
        centre = (raw[:, :2] + xy) * stride
        size = np.exp(np.minimum(raw[:, 2:4], 20.0)) * stride  # cap: a garbage logit must not overflow
        return cxcywh_to_xyxy(np.concatenate([centre, size], 1))

    if not len(rows):
        return Candidates.empty()
    conf, class_id = _best_class(rows[:, 5:] * rows[:, 4:5])
    keep = conf >= conf_threshold
    return _candidates(grid_decode(rows[keep, :4]), conf[keep], class_id[keep])


def dfl_integral(logits: np.ndarray) -> np.ndarray:
    """(N, 4, reg_max + 1) bin logits -> (N, 4) expected bin index under the softmax (distance in strides)."""
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    return p @ np.arange(logits.shape[-1], dtype=np.float32)


def _split_nanodet(outputs: Sequence[np.ndarray], num_classes: int, reg_max: int) -> tuple[np.ndarray, np.ndarray]:
    box_width = 4 * (reg_max + 1)
    arrays = [_one_image(o, "nanodet").astype(np.float32, copy=False) for o in outputs]
    if len(arrays) == 1:
        a = arrays[0]
        if a.shape[1] != num_classes + box_width and a.shape[0] == num_classes + box_width:
            a = a.T
        if a.shape[1] != num_classes + box_width:
            raise OutputLayoutError(f"nanodet: expected [1, N, {num_classes} classes + 4 x ({reg_max} + 1)] = "
                                    f"[1, N, {num_classes + box_width}], got {list(np.shape(outputs[0]))}; "
                                    "check `labels` and `reg_max`")
        return a[:, :num_classes], a[:, num_classes:]
    scores, boxes = [], []
    for a in arrays:
        if a.shape[1] in (num_classes, box_width):
            pass
        elif a.shape[0] in (num_classes, box_width):
            a = a.T
        else:
            raise OutputLayoutError(f"nanodet: output {list(a.shape)} is neither scores [N, {num_classes}] nor box "
                                    f"distributions [N, {box_width}]")
        (scores if a.shape[1] == num_classes else boxes).append(a)
    if not scores or len(scores) != len(boxes):
        raise OutputLayoutError(f"nanodet: {len(scores)} score outputs and {len(boxes)} box outputs; they must pair up")
    by_level = lambda parts: sorted(parts, key=lambda p: -p.shape[0])  # noqa: E731 - finest level first
    return np.concatenate(by_level(scores)), np.concatenate(by_level(boxes))


def decode_nanodet(outputs: Sequence[np.ndarray], num_classes: int, conf_threshold: float,
                   input_hw: tuple[int, int], strides: Sequence[int] = (8, 16, 32, 64), reg_max: int = 7,
                   cell_offset: float = 0.0, grid: Grid | None = None) -> Candidates:
    """NanoDet-Plus / PicoDet: centre = (cell + offset) * s; box = centre -/+ integral(l, t, r, b) * s."""
    scores, dists = _split_nanodet(outputs, num_classes, reg_max)
    grid = grid or make_grid(input_hw, strides)
    if scores.shape[0] != len(grid.stride):
        raise OutputLayoutError(f"nanodet: {scores.shape[0]} anchors, but input {input_hw[0]}x{input_hw[1]} with "
                                f"strides {list(strides)} has {len(grid.stride)}; check input_size/strides")
    conf = scores.max(1)
    keep = np.flatnonzero(conf >= conf_threshold)
    if not len(keep):
        return Candidates.empty()
    conf, class_id = _best_class(scores[keep])
    stride = grid.stride[keep][:, None]
    centre = (grid.xy[keep] + cell_offset) * stride
    dist = dfl_integral(dists[keep].reshape(len(keep), 4, reg_max + 1)) * stride
    xyxy = np.concatenate([centre - dist[:, :2], centre + dist[:, 2:]], 1)
    return _candidates(xyxy, conf, class_id)
