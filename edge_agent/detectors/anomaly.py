"""Edge runtime for `fieldline.decoder = "anomaly"` models (e.g. models/zoo/surface-anomaly.onnx).

The ONNX graph does all the maths (the ``seg`` U-Net or the ``knn`` memory bank, or several such models
combined by ``fieldline model anomaly combine``):
input ``image`` [1,1,S,S] grey 0..1 (plain resize, no letterbox) -> ``heatmap`` [1,1,S,S],
``score`` [1]. Here: preprocessing, threshold from metadata, and heatmap -> boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.detections import Detections
from edge_agent.detectors.base import Detector
from edge_agent.detectors.session import (
    META_PREFIX,
    ModelFileInfo,
    ModelLoadError,
    fieldline_metadata,
    file_sha256,
    open_session,
)

REQUIRED_META = ("decoder", "threshold", "input_size", "normalization")


@dataclass
class AnomalyResult:
    score: float  # image anomaly score (max of the heatmap)
    heatmap: np.ndarray  # float32 HxW in the frame's pixels (same units as score)
    is_anomalous: bool  # score > threshold


class AnomalyDetector(ModelFileInfo, Detector):
    """Anomaly model as a detector: connected regions of heatmap > threshold become ``anomaly`` boxes.

    ``threshold`` overrides ``fieldline.threshold``; ``min_area`` (frame px) drops specks.
    The box confidence is the region's peak heatmap value mapped to 0..1 by ``peak / (peak + thr)``
    (0.5 exactly at the threshold), so it orders boxes like the raw score does.
    """

    labels = ("anomaly",)

    def __init__(self, path: str | Path, threshold: float | None = None, threads: int = 1, min_area: int = 16):
        self.path = Path(path)
        self._session = open_session(self.path, threads)
        self._metadata = fieldline_metadata(self._session)
        missing = [k for k in REQUIRED_META if k not in self._metadata]
        if missing:
            raise ModelLoadError(f"{self.path}: missing ONNX metadata {', '.join(META_PREFIX + k for k in missing)}")
        if self._metadata["decoder"] != "anomaly":
            raise ModelLoadError(f"{self.path}: decoder {self._metadata['decoder']!r} is not 'anomaly'")
        if self._metadata["normalization"] != "gray_0_1":
            raise ModelLoadError(f"{self.path}: normalization {self._metadata['normalization']!r} unsupported")
        try:
            self.input_size = int(self._metadata["input_size"])
            self.threshold = float(self._metadata["threshold"]) if threshold is None else float(threshold)
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: bad fieldline.input_size/threshold metadata ({exc})") from exc
        outs = [o.name for o in self._session.get_outputs()]
        if "heatmap" not in outs or "score" not in outs:
            raise ModelLoadError(f"{self.path}: outputs {outs} lack 'heatmap' and 'score'")
        self._input_name = self._session.get_inputs()[0].name
        self.min_area = int(min_area)
        self._sha256 = file_sha256(self.path)

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3) \
                or frame.shape[0] == 0 or frame.shape[1] == 0 or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
            desc = f"{type(frame).__name__} {getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}"
            raise ValueError(f"frame must be a BGR HxWx3 or grey HxW uint8 array, got {desc.strip()}")
        g = frame if frame.ndim == 2 else (cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.shape[2] == 3
                                           else frame[..., 0])
        g = cv2.resize(g, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        return (g.astype(np.float32) / 255.0)[None, None]

    def run(self, frame: np.ndarray) -> tuple[float, np.ndarray]:
        """Raw model output: (score, heatmap at input_size x input_size)."""
        out = self._session.run(["heatmap", "score"], {self._input_name: self.preprocess(frame)})
        return float(np.asarray(out[1]).reshape(-1)[0]), np.asarray(out[0], np.float32)[0, 0]

    def score(self, frame: np.ndarray) -> AnomalyResult:
        s, hm = self.run(frame)
        h, w = frame.shape[:2]
        hm = cv2.resize(hm, (w, h), interpolation=cv2.INTER_LINEAR)
        return AnomalyResult(s, hm, bool(s > self.threshold))

    def detect(self, frame: np.ndarray) -> Detections:
        res = self.score(frame)
        if not res.is_anomalous:
            return Detections.empty(self.labels)
        binary = (res.heatmap > self.threshold).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        boxes, conf = [], []
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < self.min_area:
                continue
            peak = float(res.heatmap[lab == i].max())
            boxes.append([x, y, x + w, y + h])
            conf.append(peak / (peak + self.threshold) if self.threshold > 0 else 1.0)
        if not boxes:
            return Detections.empty(self.labels)
        order = np.argsort(conf)[::-1]
        return Detections(np.array(boxes, np.float32)[order], np.array(conf, np.float32)[order],
                          np.zeros(len(boxes), np.int64), None, self.labels)


def read_anomaly_metadata(path: str | Path) -> dict[str, str]:
    """fieldline.* metadata of an ONNX file (without the prefix), e.g. for tests and cards."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key[len(META_PREFIX):]: p.value for p in m.metadata_props if p.key.startswith(META_PREFIX)}


__all__ = ["AnomalyDetector", "AnomalyResult", "read_anomaly_metadata"]
