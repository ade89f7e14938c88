"""INT8 calibration streams in chunks sized to the network's activations (it held every frame's tensors: 19.9 GB
for 100 frames at 640), a check set too small for the limit is flagged, and `model stats` prints its summary whole."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

import models.detect.quantize as quantize_mod
from models.detect.calibration_stream import (StreamingCalibration, activation_bytes, calibration_chunk, fit_frame,
                                       small_check_warning)
from models.cli.app import model_app
from models.data.sources import DataSource
from models.zoo_index import ZOO
from tests.support.shapes import shapes_dataset

FAST = ZOO / "tomato-ripeness-fast.onnx"


def test_reader_serves_onnxruntime_chunks_then_stops() -> None:
    frames = iter([np.full((1, 3, 4, 4), i, np.float32) for i in range(7)])
    reader = StreamingCalibration("images", frames, count=7, chunk=3)
    assert len(reader) == 9  # a multiple of the chunk, as onnxruntime's strided loop requires
    served = []
    for start in range(0, len(reader), reader.chunk):
        reader.set_range(start, start + reader.chunk)
        chunk = []
        while (x := reader.get_next()) is not None:
            chunk.append(int(x["images"][0, 0, 0, 0]))
        served.append(chunk)
    assert served == [[0, 1, 2], [3, 4, 5], [6]]


def test_chunk_shrinks_with_the_input_size() -> None:
    model = onnx.load(str(FAST))
    small, large = activation_bytes(model, 320), activation_bytes(model, 640)
    assert 3.5 < large / small < 4.5  # activations grow with the area
    assert calibration_chunk(model, 640, budget=large * 5) == 5
    assert calibration_chunk(model, 320, budget=large * 5) >= 19
    assert calibration_chunk(model, 640, budget=1) == 1


def _scales(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
            if t.name.endswith("_scale")}


@pytest.mark.parametrize("calibration", ["minmax", "percentile"])
def test_streamed_ranges_equal_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calibration: str) -> None:
    data = shapes_dataset(tmp_path / "data", count=24)
    src = DataSource.parse(str(data), "yolo")
    chunks: list[int] = []
    real = quantize_mod.calibration_chunk

    def spy(model: onnx.ModelProto, size: int, budget: int = 0) -> int:
        chunks.append(real(model, size, budget=budget_now))
        return chunks[-1]

    monkeypatch.setattr(quantize_mod, "calibration_chunk", spy)
    ranges: list[tuple[int, int]] = []
    real_set_range = StreamingCalibration.set_range
    monkeypatch.setattr(StreamingCalibration, "set_range",
                        lambda self, start_index, end_index: (ranges.append((start_index, end_index)),
                                                                   real_set_range(self, start_index, end_index))[1])
    budget_now = 1  # one frame a chunk
    one_by_one = quantize_mod.quantize(FAST, tmp_path / "streamed.onnx", calib_count=6, source=src,
                                       calibration=calibration)
    budget_now = 2 ** 40  # every frame in one pass
    whole = quantize_mod.quantize(FAST, tmp_path / "whole.onnx", calib_count=6, source=src, calibration=calibration)
    assert chunks[0] == 1 and chunks[1] >= 6
    passes = 2 if calibration == "percentile" else 1  # percentile: min/max first, then histograms on those ranges
    assert ranges == [(i, i + 1) for i in range(6)] * passes + [(0, 6)] * passes  # one frame a chunk, then one chunk
    a, b = _scales(one_by_one), _scales(whole)
    assert a.keys() == b.keys() and len(a) > 20
    assert all(np.allclose(a[k], b[k], rtol=1e-6) for k in a)


def test_check_frames_are_kept_at_the_input_scale() -> None:
    img = np.zeros((1200, 1600, 3), np.uint8)
    small, boxes, labels = fit_frame((img, np.array([[400, 300, 800, 600]], np.float32), ["x"]), 320)
    assert small.shape == (240, 320, 3) and np.allclose(boxes, [[80, 60, 160, 120]]) and labels == ["x"]
    same = fit_frame((small, boxes, labels), 320)
    assert same[0] is small


def test_too_small_check_set_is_flagged() -> None:
    warning = small_check_warning(14, 0.01)
    assert warning and "14 pictures" in warning and "at least 100" in warning and "1.0-point" in warning
    assert small_check_warning(200, 0.01) is None
    assert small_check_warning(30, 0.05) is None and small_check_warning(19, 0.05)


def test_stats_summary_is_one_unbroken_line(tmp_path: Path) -> None:
    data = shapes_dataset(tmp_path / "data", count=12)
    r = CliRunner().invoke(model_app, ["stats", str(data), "--format", "yolo"])
    assert r.exit_code == 0, r.output
    summary = [ln for ln in r.output.splitlines() if ln.startswith("boxes small")]
    assert len(summary) == 1
    assert re.fullmatch(r"boxes small \(<32²\) \d+, medium \d+, large \(≥96²\) \d+; images without boxes 0",
                        summary[0].strip())
    assert any(ln.startswith(str(data)) and ln.rstrip().endswith("(yolo)") for ln in r.output.splitlines())
