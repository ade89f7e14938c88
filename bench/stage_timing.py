"""Times a detector's own stages (preprocessing, inference) inside its ``detect_frame``, in CPU time."""

from __future__ import annotations

import time
from collections.abc import Callable
from unittest import mock

from edge_agent.detectors import onnx_detector
from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.detectors.onnx_generic import OnnxGenericDetector
from edge_agent.detectors.preprocess import PlanesCanvas, letterbox_rgb01

CLOCK = time.process_time


class Stopwatch:
    """Accumulates the CPU time spent inside wrapped callables."""

    def __init__(self) -> None:
        self.ms = 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms += (CLOCK() - started) * 1000

        return timed

    def take(self) -> float:
        ms, self.ms = self.ms, 0.0
        return ms


class _TimedSession:
    def __init__(self, session, watch: Stopwatch) -> None:
        self._session, self.run = session, watch.wrap(session.run)
        self.run_with_iobinding = watch.wrap(session.run_with_iobinding)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class StagedDetector:
    """Times preprocessing and inference inside the detector's own ``detect_frame`` (no re-implementation)."""

    def __init__(self, detector: OnnxDetector | OnnxGenericDetector) -> None:
        self.detector, self.pre, self.infer = detector, Stopwatch(), Stopwatch()
        self._patches = []
        if isinstance(detector, OnnxGenericDetector):
            detector.preprocess = self.pre.wrap(detector.preprocess)
            detector.infer = self.infer.wrap(detector.infer)
        else:  # the native OnnxDetector calls the shared letterbox-to-tensor code and its session
            self._patches = [mock.patch.object(onnx_detector, "letterbox_rgb01", self.pre.wrap(letterbox_rgb01)),
                             mock.patch.object(PlanesCanvas, "write", self.pre.wrap(PlanesCanvas.write))]
            detector._session = _TimedSession(detector._session, self.infer)

    def __enter__(self) -> StagedDetector:
        for p in self._patches:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        for p in self._patches:
            p.stop()
        if isinstance(self.detector, OnnxGenericDetector):
            del self.detector.preprocess, self.detector.infer
        else:
            self.detector._session = self.detector._session._session

    def detect_frame(self, frame) -> tuple[object, dict[str, float]]:
        started = CLOCK()
        det = self.detector.detect_frame(frame)
        total = (CLOCK() - started) * 1000
        pre, infer = self.pre.take(), self.infer.take()
        return det, {"preprocess": pre, "inference": infer, "postprocess": total - pre - infer}
