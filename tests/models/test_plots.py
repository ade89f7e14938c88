"""models.detect.plots on a tiny fixture whose confusion matrix and PR/AP were worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detect.plots import average_precision, box_iou, confusion_matrix, pr_curves, write_eval_plots

LABELS = ["a", "b"]
B = np.array
# image 1: A1 a (0,0,10,10), B1 b (20,20,30,30); image 2: A2 a (0,0,10,10), B2 b (40,40,50,50)
GT = [(B([[0, 0, 10, 10], [20, 20, 30, 30]]), ["a", "b"]),
      (B([[0, 0, 10, 10], [40, 40, 50, 50]]), ["a", "b"])]
# p1 hits A1 (a, 0.9); p2 sits on B1 but says a (0.8); p3 on nothing (b, 0.7); p6 duplicate on B1 (b, 0.5, IoU 0.9)
# p4 hits A2 (a, 0.6, IoU 100/110); p5 on A2 says b (0.1, under the 0.25 confusion threshold); B2 missed
PRED = [(B([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [21, 20, 30, 30]]), B([0.9, 0.8, 0.7, 0.5]),
         ["a", "a", "b", "b"]),
        (B([[0, 0, 10, 11], [0, 0, 10, 10]]), B([0.6, 0.1]), ["a", "b"])]


def test_confusion_matrix_by_hand() -> None:
    cm = confusion_matrix(GT, PRED, LABELS, conf=0.25, iou=0.5)
    # rows true a, b, background; columns predicted a, b, background
    assert cm.tolist() == [[2, 0, 0],   # A1<-p1, A2<-p4
                           [1, 0, 1],   # B1<-p2 (said a), B2 missed
                           [0, 2, 0]]   # p3 and p6 (B1 already taken by p2) are false positives
    # conf 0.05 lets p5 in: it overlaps A2 better (IoU 1) than p4 (0.91), so A2 is "a predicted as b" and p4
    # becomes a false positive
    low = confusion_matrix(GT, PRED, LABELS, conf=0.05)
    assert low.tolist() == [[1, 1, 0], [1, 0, 1], [1, 2, 0]]


def test_pr_curves_and_ap_by_hand() -> None:
    c = pr_curves(GT, PRED, LABELS, iou=0.5)
    # a: p1 TP, p2 FP (IoU 0 with A1), p4 TP -> precision 1, 1/2, 2/3; recall 1/2, 1/2, 1
    np.testing.assert_allclose(c["a"]["precision"], [1, 0.5, 2 / 3])
    np.testing.assert_allclose(c["a"]["recall"], [0.5, 0.5, 1.0])
    assert c["a"]["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # b: p3 FP, p6 TP on B1, p5 FP (no b box in image 2 overlaps it) -> AP = 0.5 recall x 0.5 precision
    np.testing.assert_allclose(c["b"]["precision"], [0, 0.5, 1 / 3])
    assert c["b"]["ap"] == pytest.approx(0.25) and c["b"]["n_gt"] == 2
    assert average_precision(np.array([]), np.array([])) == 0.0
    assert box_iou(B([[0, 0, 10, 11]]), B([[0, 0, 10, 10]]))[0, 0] == pytest.approx(100 / 110)


def test_write_eval_plots(tmp_path: Path) -> None:
    res = write_eval_plots(tmp_path / "plots", GT, PRED, LABELS)
    for key in ("pr_curves", "confusion_matrix_png"):
        img = cv2.imread(res[key])
        assert img is not None and img.shape[0] > 200 and img.std() > 10
    saved = json.loads((tmp_path / "plots" / "eval_plots.json").read_text())
    assert saved["confusion_matrix"] == [[2, 0, 0], [1, 0, 1], [0, 2, 0]]
    assert saved["labels"] == ["a", "b", "background"] and saved["ap"] == {"a": 0.8333, "b": 0.25}
