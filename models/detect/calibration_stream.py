"""INT8 calibration in bounded memory, and how small a check set may be.

onnxruntime's calibrators keep every intermediate tensor of every calibration frame until the reader is exhausted,
then build their ranges (histograms for ``percentile``, min/max for ``minmax``). At a 640 input that is ~200 MB a
frame for the v1 network (measured: 20 frames 4.1 GB peak RSS), so 100 frames took 19.9 GB and the default 300
were killed at ~24 GB.

:func:`stream_ranges` feeds the calibrator ``chunk`` frames at a time (:func:`calibration_chunk` sizes the chunk
from the network's activation bytes per frame at that input) and writes the ranges to onnxruntime's calibration
cache, which ``quantize_static`` then reads instead of calibrating. onnxruntime's own chunked mode
(``CalibStridedMinMax``) is not used for histograms: a later chunk that reaches further than the first adds bins of
the first chunk's width, and with small chunks that reached 22 GB for 20 frames (a tensor nearly zero on the first
frame). So the percentile method takes two passes: streamed min/max (exact, as one pass), then histograms over
those fixed ranges, accumulated chunk by chunk (the same bins as one pass over every frame).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, shape_inference
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
from onnxruntime.quantization.calibrate import HistogramCollector, create_calibrator, save_tensors_data

from edge_agent.detectors.preprocess import fitted_size, resize_fast

ACTIVATION_BUDGET = 256 * 2 ** 20  # bytes of intermediate tensors the calibrator may hold at once (one chunk)
_FLOAT_BYTES = {TensorProto.FLOAT: 4, TensorProto.FLOAT16: 2, TensorProto.DOUBLE: 8}


class StreamingCalibration(CalibrationDataReader):
    """Input tensors from an iterator, in chunks of ``chunk`` (onnxruntime's strided calibration protocol:
    ``len()`` and ``set_range`` before each chunk). ``count``: how many the iterator yields."""

    def __init__(self, input_name: str, tensors: Iterator[np.ndarray], count: int, chunk: int):
        if count < 1:
            raise ValueError("calibration needs at least one frame")
        self._name, self._tensors, self.count = input_name, tensors, count
        self.chunk = max(1, min(chunk, count))
        self._left = count  # without set_range (a plain pass): everything
        self.ranges: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return math.ceil(self.count / self.chunk) * self.chunk  # a multiple of the chunk; the last chunk is shorter

    def set_range(self, start_index: int, end_index: int) -> None:
        self._left = end_index - start_index
        self.ranges.append((start_index, end_index))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._left <= 0:
            return None
        x = next(self._tensors, None)
        if x is None:
            return None
        self._left -= 1
        return {self._name: x}


def _collect(calibrator, reader: StreamingCalibration) -> None:
    """Every chunk of ``reader`` through ``calibrator`` (each chunk's tensors are freed before the next); the
    calibrator's progress prints (one a chunk) would bury the CLI's JSON line, so they go nowhere."""
    for start in range(0, len(reader), reader.chunk):
        reader.set_range(start, start + reader.chunk)
        if start < reader.count:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                calibrator.collect_data(reader)


def stream_ranges(model: Path, readers: Callable[[], StreamingCalibration], ops: tuple[str, ...],
                  method: CalibrationMethod, options: dict[str, object], cache: Path) -> None:
    """Calibrate ``model`` chunk by chunk into onnxruntime's calibration cache file ``cache`` (JSON ranges that
    ``quantize_static(calibration_cache_path=...)`` reads). ``readers()`` gives a fresh reader over the same frames
    (the percentile method reads them twice); ``options``: ``CalibPercentile`` for the percentile method."""
    with tempfile.TemporaryDirectory(prefix="fieldline-calib-") as tmp:
        minmax = create_calibrator(model, list(ops), str(Path(tmp) / "minmax.onnx"), CalibrationMethod.MinMax,
                                   providers=["CPUExecutionProvider"], extra_options={"symmetric": False})
        _collect(minmax, readers())
        ranges = minmax.compute_data()
        del minmax
        if method != CalibrationMethod.Percentile:
            save_tensors_data(ranges, cache)
            return
        calib = create_calibrator(model, list(ops), str(Path(tmp) / "hist.onnx"), CalibrationMethod.Percentile,
                                  providers=["CPUExecutionProvider"],
                                  extra_options={"symmetric": False, "percentile": options["CalibPercentile"]})
        collector = HistogramCollector(method=calib.method, symmetric=calib.symmetric, num_bins=calib.num_bins,
                                       num_quantized_bins=calib.num_quantized_bins, percentile=calib.percentile,
                                       scenario=calib.scenario)
        for name in ranges:  # every tensor's final range first: no chunk ever widens a histogram
            lo, hi = (np.asarray(v, np.float32).reshape(()) for v in ranges[name].range_value)
            threshold = np.asarray(max(abs(float(lo)), abs(float(hi))), np.float32)
            edges = np.linspace(-threshold, threshold, calib.num_bins + 1).astype(np.float32)
            collector.histogram_dict[name] = (np.zeros(calib.num_bins, np.int64), edges, lo, hi, threshold)
        calib.collector = collector
        _collect(calib, readers())
        save_tensors_data(calib.compute_data(), cache)


def activation_bytes(model: onnx.ModelProto, size: int) -> int:
    """Bytes of every float tensor the graph computes for one ``size`` x ``size`` frame (an upper bound on what a
    calibrator collects per frame): shapes inferred with the input's dynamic sides fixed at ``size``."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, 3, size, size)):
        d.ClearField("dim_param")
        d.dim_value = v
    del fixed.graph.value_info[:]
    inferred = shape_inference.infer_shapes(fixed)
    total = 0
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = info.type.tensor_type
        if t.elem_type not in _FLOAT_BYTES or not t.HasField("shape"):
            continue
        dims_v = [d.dim_value for d in t.shape.dim]
        if all(v > 0 for v in dims_v):
            total += math.prod(dims_v) * _FLOAT_BYTES[t.elem_type]
    return total


def calibration_chunk(model: onnx.ModelProto, size: int, budget: int = ACTIVATION_BUDGET) -> int:
    """Frames per calibration chunk: as many as fit ``budget`` bytes of activations at input ``size`` (at least 1)."""
    per_frame = activation_bytes(model, size)
    return max(1, budget // max(per_frame, 1))


def fit_frame(frame: tuple[np.ndarray, np.ndarray, list[str]], max_side: int | None
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A labelled frame shrunk to the detector's letterbox scale when it is larger (boxes scaled alike), with the
    detector's own resize: what the model sees is unchanged, and a check set of large photos stays small."""
    img, boxes, labels = frame
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return frame
    nw, nh = fitted_size(w, h, max_side, max_side)
    scale = np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    return resize_fast(img, nw, nh), np.asarray(boxes, np.float32).reshape(-1, 4) * scale, labels


def small_check_warning(count: int, max_drop: float) -> str | None:
    """Why a check on ``count`` pictures cannot decide a ``max_drop`` limit (None when it can).

    One picture whose detections change moves the check's mAP50 by up to about 1/count; a limit smaller than that
    is decided by one picture (a 14-picture check reported a gain for a file that lost 2 points on test)."""
    need = math.ceil(1 / max_drop) if max_drop > 0 else count + 1
    if count >= need:
        return None
    return (f"the INT8 check ran on {count} pictures: one picture moves its mAP50 by up to {100 / max(count, 1):.0f} "
            f"points, too few to decide a {100 * max_drop:.1f}-point limit (it needs at least {need}). Give "
            f"--check-count {need} pictures the calibration did not see (a larger val split, or a smaller "
            "--calib-count), and evaluate the INT8 file on the test split.")
