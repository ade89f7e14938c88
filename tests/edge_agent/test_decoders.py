"""Output decoders per family (known answers), the generic ONNX detector, the factory and the model config.

Three layers:
- the pure numpy decoders on hand-made raw outputs whose boxes are known;
- real onnxruntime sessions on tiny ONNX graphs built here that emit a known tensor of each family's
  output layout (so the whole path runs in CI without any downloaded model);
- the random-weight anchor exports (YOLO11n, YOLO26n end-to-end) from ``FIELDLINE_ANCHORS``
  (default ``../shared/anchors`` beside the repo): real graphs of the real layouts, checked for shapes,
  dtypes and ranges only, since their weights are random.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from pydantic import TypeAdapter, ValidationError

from edge_agent.config import AgentConfig, ModelConfig
from edge_agent.detections import Detections
from edge_agent.detectors import ModelLoadError, OnnxDetector, build_detector
from edge_agent.detectors.decoders import (
    OutputLayoutError,
    decode_nanodet,
    decode_yolo_e2e,
    decode_yolov5,
    decode_yolov8,
    decode_yolox,
    dfl_integral,
    make_grid,
)
from edge_agent.detectors.onnx_generic import OnnxGenericDetector, load_labels
from edge_agent.detectors.preprocess import fit_to_input, letterbox, to_tensor

REPO = Path(__file__).resolve().parents[2]
ZOO_INT8 = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"
MODEL = TypeAdapter(ModelConfig)
COCO_STYLE = [f"class_{i}" for i in range(80)]


# ---------------------------------------------------------------- builders
def model_config(**fields) -> object:
    return MODEL.validate_python(fields)


def constant_model(path: Path, outputs: dict[str, np.ndarray], input_hw: tuple[int, int] = (320, 320),
                   transpose: tuple[str, ...] = ()) -> Path:
    """An ONNX graph whose outputs are fixed tensors; names in ``transpose`` go through a Transpose node
    ([1, A, B] stored, [1, B, A] emitted), so layout handling sees a real operator output."""
    nodes, infos = [], []
    for name, array in outputs.items():
        array = np.asarray(array, np.float32)
        const = f"{name}_const" if name in transpose else name
        stored = array.transpose(0, 2, 1) if name in transpose else array
        nodes.append(helper.make_node("Constant", [], [const], value=numpy_helper.from_array(np.ascontiguousarray(stored))))
        if name in transpose:
            nodes.append(helper.make_node("Transpose", [const], [name], perm=[0, 2, 1]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(nodes, "constant_head",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *input_hw])], infos)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def blank_frame(height: int = 720, width: int = 1280) -> np.ndarray:
    return np.full((height, width, 3), 60, np.uint8)


def assert_valid(det: Detections, frame: np.ndarray, num_labels: int, max_det: int) -> None:
    h, w = frame.shape[:2]
    assert isinstance(det, Detections)
    assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (len(det), 4)
    assert det.confidence.dtype == np.float32 and det.class_id.dtype == np.int64
    assert len(det) <= max_det and len(det.labels) == num_labels
    if len(det):
        assert det.xyxy[:, [0, 2]].min() >= 0 and det.xyxy[:, [0, 2]].max() <= w
        assert det.xyxy[:, [1, 3]].min() >= 0 and det.xyxy[:, [1, 3]].max() <= h
        assert (det.xyxy[:, 2] > det.xyxy[:, 0]).all() and (det.xyxy[:, 3] > det.xyxy[:, 1]).all()
        assert det.confidence.min() >= 0 and det.confidence.max() <= 1
        assert det.class_id.min() >= 0 and det.class_id.max() < num_labels


# ---------------------------------------------------------------- pure decoders
def test_yolov5_objectness_times_class_and_gating() -> None:
    rows = np.array([
        [100, 100, 40, 20, 0.9, 0.1, 0.8],  # score 0.72, class 1
        [50, 50, 10, 10, 0.2, 1.0, 0.0],  # class sure but objectness 0.2: gated out
        [10, 10, 10, 10, 0.9, 0.2, 0.1],  # objectness high, class weak: 0.18 < 0.25
    ], np.float32)[None]
    c = decode_yolov5(rows, num_classes=2, conf_threshold=0.25)
    assert len(c) == 1 and c.needs_nms
    np.testing.assert_allclose(c.xyxy, [[80, 90, 120, 110]])
    np.testing.assert_allclose(c.scores, [0.72], rtol=1e-6)
    assert c.class_id.tolist() == [1]
    with pytest.raises(OutputLayoutError, match=r"5 \+ 3 classes"):
        decode_yolov5(rows, num_classes=3, conf_threshold=0.25)


def test_yolov8_both_layouts_agree() -> None:
    rows = np.array([[160, 120, 64, 32, 0.1, 0.7, 0.05],
                     [10, 10, 4, 4, 0.2, 0.1, 0.05],  # best 0.2 < 0.25
                     [300, 200, 20, 40, 0.0, 0.0, 0.95]], np.float32)
    native = decode_yolov8(rows.T[None], 3, 0.25)
    transposed = decode_yolov8(rows[None], 3, 0.25)
    for c in (native, transposed):
        np.testing.assert_allclose(c.xyxy, [[128, 104, 192, 136], [290, 180, 310, 220]])
        np.testing.assert_allclose(c.scores, [0.7, 0.95])
        assert c.class_id.tolist() == [1, 2]
    with pytest.raises(OutputLayoutError, match="yolov8"):
        decode_yolov8(rows[None], 5, 0.25)


def test_yolo_e2e_needs_no_nms_and_drops_bad_rows() -> None:
    rows = np.array([[10, 20, 30, 40, 0.9, 3], [11, 21, 31, 41, 0.8, 3], [0, 0, 5, 5, 0.1, 0],
                     [0, 0, 9, 9, 0.7, 12]], np.float32)[None]  # class 12 out of range
    c = decode_yolo_e2e(rows, 4, 0.25)
    assert not c.needs_nms
    np.testing.assert_allclose(c.xyxy, [[10, 20, 30, 40], [11, 21, 31, 41]])
    assert c.class_id.tolist() == [3, 3]
    with pytest.raises(OutputLayoutError, match="yolo_e2e"):
        decode_yolo_e2e(np.zeros((1, 300, 7), np.float32), 4, 0.25)


def yolox_raw(input_hw: tuple[int, int] = (64, 64), num_classes: int = 2) -> np.ndarray:
    """Raw YOLOX head output with one object at stride 16, cell (col 2, row 1)."""
    n = len(make_grid(input_hw, (8, 16, 32)).stride)  # 64 + 16 + 4 = 84 for 64x64
    out = np.zeros((1, n, 5 + num_classes), np.float32)
    idx = 64 + 1 * 4 + 2
    out[0, idx] = [0.5, 0.25, math.log(2.0), 0.0, 0.9, 0.1, 0.9]
    return out


def test_yolox_grid_decode() -> None:
    assert len(make_grid((64, 64), (8, 16, 32)).stride) == 84
    c = decode_yolox(yolox_raw(), 2, 0.25, (64, 64))
    # cx = (0.5 + 2) * 16 = 40, cy = (0.25 + 1) * 16 = 20, w = 2 * 16, h = 1 * 16
    np.testing.assert_allclose(c.xyxy, [[24, 12, 56, 28]], atol=1e-4)
    np.testing.assert_allclose(c.scores, [0.81], rtol=1e-6)
    assert c.class_id.tolist() == [1]
    with pytest.raises(OutputLayoutError, match="84"):
        decode_yolox(yolox_raw(), 2, 0.25, (96, 64))


def test_yolox_already_decoded_is_read_like_yolov5() -> None:
    rows = np.array([[[40, 20, 32, 16, 0.9, 0.1, 0.9]]], np.float32)
    c = decode_yolox(rows, 2, 0.25, (64, 64), decoded=True)
    np.testing.assert_allclose(c.xyxy, [[24, 12, 56, 28]])


def test_dfl_integral_is_the_softmax_mean() -> None:
    logits = np.full((1, 4, 8), -30.0, np.float32)
    logits[0, 0, [0, 2]] = 0.0  # half at 0, half at 2 -> 1
    logits[0, 1, 5] = 0.0  # all at 5
    logits[0, 2] = 0.0  # uniform over 0..7 -> 3.5
    logits[0, 3, [1, 3]] = [0.0, math.log(3.0)]  # 1/4 at 1, 3/4 at 3 -> 2.5
    np.testing.assert_allclose(dfl_integral(logits), [[1.0, 5.0, 3.5, 2.5]], atol=1e-5)


def nanodet_raw(num_classes: int = 2, reg_max: int = 7) -> np.ndarray:
    """[1, 85, C + 4 x 8] for a 64x64 input: one object at stride 8, cell (col 3, row 2)."""
    n = len(make_grid((64, 64), (8, 16, 32, 64)).stride)
    out = np.zeros((1, n, num_classes + 4 * (reg_max + 1)), np.float32)
    out[0, :, num_classes:] = -30.0
    idx = 2 * 8 + 3
    out[0, idx, :num_classes] = [0.05, 0.8]
    dist = out[0, idx, num_classes:].reshape(4, reg_max + 1)
    dist[0, [0, 2]] = 0.0  # left = 1 bin (a two-bin mixture)
    dist[1, 2] = 0.0  # top = 2
    dist[2, 3] = 0.0  # right = 3
    dist[3, 1] = 0.0  # bottom = 1
    out[0, idx, num_classes:] = dist.ravel()
    return out


def test_nanodet_dfl_decode() -> None:
    c = decode_nanodet([nanodet_raw()], 2, 0.25, (64, 64))
    # centre (3 * 8, 2 * 8) = (24, 16); l, t, r, b = 1, 2, 3, 1 bins of 8 px
    np.testing.assert_allclose(c.xyxy, [[16, 0, 48, 24]], atol=1e-3)
    np.testing.assert_allclose(c.scores, [0.8])
    assert c.class_id.tolist() == [1]
    shifted = decode_nanodet([nanodet_raw()], 2, 0.25, (64, 64), cell_offset=0.5)
    np.testing.assert_allclose(shifted.xyxy, [[20, 4, 52, 28]], atol=1e-3)
    with pytest.raises(OutputLayoutError, match="reg_max"):
        decode_nanodet([nanodet_raw()], 2, 0.25, (64, 64), reg_max=15)


def test_picodet_split_outputs_per_level_in_any_order() -> None:
    raw = nanodet_raw()[0]
    bounds = np.cumsum([0, 64, 16, 4, 1])
    scores = [raw[a:b, :2][None] for a, b in zip(bounds[:-1], bounds[1:])]
    boxes = [raw[a:b, 2:][None] for a, b in zip(bounds[:-1], bounds[1:])]
    scores[1] = scores[1].transpose(0, 2, 1)  # [1, C, N] is accepted as well
    outputs = [boxes[2], scores[0], boxes[0], scores[3], boxes[1], scores[2], boxes[3], scores[1]]
    c = decode_nanodet(outputs, 2, 0.25, (64, 64))
    np.testing.assert_allclose(c.xyxy, [[16, 0, 48, 24]], atol=1e-3)
    concatenated = decode_nanodet([raw[None, :, :2], raw[None, :, 2:]], 2, 0.25, (64, 64))
    np.testing.assert_allclose(concatenated.xyxy, c.xyxy)


# ---------------------------------------------------------------- preprocessing
def test_fit_to_input_modes_map_boxes_back() -> None:
    frame = blank_frame(720, 1280)
    canvas, lb = fit_to_input(frame, 320, 320)
    ref_canvas, ref = letterbox(frame, 320)
    assert lb == ref and np.array_equal(canvas, ref_canvas)  # the shared letterbox is this mode
    assert (lb.scale, lb.pad_x, lb.pad_y) == (0.25, 0, 70)
    np.testing.assert_allclose(lb.to_frame(np.array([[40, 110, 80, 150]], np.float32)), [[160, 160, 320, 320]])
    canvas, tl = fit_to_input(frame, 320, 320, "letterbox_top_left", pad_value=0)
    assert (tl.pad_x, tl.pad_y) == (0, 0) and canvas[300, 10].tolist() == [0, 0, 0]
    np.testing.assert_allclose(tl.to_frame(np.array([[40, 40, 80, 80]], np.float32)), [[160, 160, 320, 320]])
    canvas, st = fit_to_input(frame, 192, 320, "stretch")
    assert canvas.shape == (192, 320, 3)
    np.testing.assert_allclose(st.to_frame(np.array([[32, 48, 64, 96]], np.float32)), [[128, 180, 256, 360]])
    _, rect = fit_to_input(frame, 192, 320)  # [h, w] input: 720p fits exactly at 0.25 minus rounding
    assert rect.scale == 0.25 and rect.pad_y == 6


@pytest.mark.parametrize("norm, first_pixel", [
    ("rgb_0_1", [30 / 255, 20 / 255, 10 / 255]),
    ("bgr_0_255", [10, 20, 30]),
    ("rgb_imagenet", [(30 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (10 / 255 - 0.406) / 0.225]),
    ("bgr_imagenet", [(10 - 103.53) / 57.375, (20 - 116.28) / 57.12, (30 - 123.675) / 58.395]),
])
def test_normalizations(norm: str, first_pixel: list[float]) -> None:
    canvas = np.zeros((4, 4, 3), np.uint8)
    canvas[0, 0] = [10, 20, 30]  # B, G, R
    t = to_tensor(canvas, norm)
    assert t.shape == (1, 3, 4, 4) and t.dtype == np.float32 and t.flags.c_contiguous
    np.testing.assert_allclose(t[0, :, 0, 0], first_pixel, rtol=1e-3)


# ---------------------------------------------------------------- labels and config
def test_labels_from_list_txt_and_yaml(tmp_path: Path) -> None:
    assert load_labels(["a", "b"]) == ("a", "b")
    (tmp_path / "l.txt").write_text("green\n\nripe\n")
    assert load_labels(tmp_path / "l.txt") == ("green", "ripe")
    (tmp_path / "l.yaml").write_text("names:\n  0: person\n  1: bicycle\n")
    assert load_labels(str(tmp_path / "l.yaml")) == ("person", "bicycle")
    (tmp_path / "list.yml").write_text("[cat, dog]\n")
    assert load_labels(tmp_path / "list.yml") == ("cat", "dog")
    (tmp_path / "gap.yaml").write_text("{0: a, 2: c}\n")
    with pytest.raises(ModelLoadError, match="without gaps"):
        load_labels(tmp_path / "gap.yaml")
    with pytest.raises(ModelLoadError, match="missing.txt"):
        load_labels(tmp_path / "missing.txt")


def agent_dict(model: dict) -> dict:
    return {"device": "dev-1", "site": "farm", "model": model,
            "cameras": [{"name": "cam", "source": {"type": "synthetic"}, "zone": {"id": "shed-1"}}]}


def test_config_without_type_is_fieldline_and_types_are_checked() -> None:
    legacy = AgentConfig.model_validate(agent_dict({"path": "m.onnx", "conf_threshold": 0.4}))
    assert legacy.model.type == "fieldline" and legacy.model.conf_threshold == 0.4
    v8 = AgentConfig.model_validate(agent_dict({"type": "yolov8", "path": "m.onnx", "labels": "coco.txt",
                                                "input_size": [320, 480]}))
    assert v8.model.input_size == (320, 480) and v8.model.normalization == "rgb_0_1"
    assert AgentConfig.model_validate(v8.model_dump(mode="json")) == v8  # persisted configs load back
    yolox = AgentConfig.model_validate(agent_dict({"type": "yolox", "path": "m.onnx", "labels": ["a"]}))
    assert (yolox.model.normalization, yolox.model.resize, yolox.model.decoded) == ("bgr_0_255",
                                                                                    "letterbox_top_left", False)
    for bad, match in [({"type": "yolo9", "path": "m"}, "type must be one of"),
                       ({"type": "yolov8", "path": "m"}, "labels"),
                       ({"path": "m", "labels": ["a"]}, "Extra inputs"),
                       ({"type": "nanodet", "path": "m", "labels": ["a"], "reg_max": 0}, "reg_max")]:
        with pytest.raises(ValidationError, match=match):
            AgentConfig.model_validate(agent_dict(bad))


def test_schema_lists_every_detector_type() -> None:
    schema = json.dumps(AgentConfig.model_json_schema())
    for kind in ("fieldline", "yolov5", "yolov8", "yolo_e2e", "yolox", "nanodet"):
        assert f'"const": "{kind}"' in schema or f'"enum": ["{kind}"]' in schema, kind

    def walk(node: object, where: str) -> None:  # every field of every model variant is described
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                assert "description" in prop, f"{where}.{name}"
            for key, child in node.items():
                walk(child, f"{where}.{key}")

    defs = AgentConfig.model_json_schema()["$defs"]
    walk({name: d for name, d in defs.items() if name.endswith("ModelConfig")}, "$defs")


def test_factory_builds_native_for_fieldline() -> None:
    det = build_detector(model_config(path=str(ZOO_INT8)))
    assert isinstance(det, OnnxDetector) and det.labels == ("green", "half_ripe", "ripe")
    assert det.dynamic_size and det.letterbox == "tight"  # zoo detectors are dynamic-size files
    assert det.agnostic_nms  # the edge default: a fruit is one object whatever its ripeness
    assert not build_detector(model_config(path=str(ZOO_INT8), nms="classwise")).agnostic_nms


def test_fieldline_config_sets_the_run_size_and_letterbox_of_a_dynamic_model() -> None:
    det = build_detector(model_config(path=str(ZOO_INT8), input_size=320, letterbox="square"))
    assert det.input_size == 320 and det.input_canvas(640, 480) == (320, 320)
    out = det.detect(np.full((480, 640, 3), 90, np.uint8))
    assert out.labels == ("green", "half_ripe", "ripe")
    with pytest.raises(ModelLoadError, match="tomato-ripeness.int8.onnx: model.input_size 336 must be a multiple of 32"):
        build_detector(model_config(path=str(ZOO_INT8), input_size=336))
    for bad, match in [({"input_size": 16}, "greater than or equal to 32"), ({"letterbox": "round"}, "letterbox")]:
        with pytest.raises(ValidationError, match=match):
            AgentConfig.model_validate(agent_dict({"path": "m.onnx", **bad}))


# ---------------------------------------------------------------- generic detector on real onnxruntime sessions
def test_yolov5_graph_letterbox_back_to_frame_and_nms(tmp_path: Path) -> None:
    rows = np.zeros((1, 50, 7), np.float32)
    rows[0, 0] = [60, 130, 40, 40, 0.9, 0.9, 0.0]  # frame box [160, 160, 320, 320], class 0, 0.81
    rows[0, 1] = [61, 131, 40, 40, 0.9, 0.85, 0.0]  # duplicate of it, lower score: NMS removes it
    rows[0, 2] = [61, 131, 40, 40, 0.9, 0.0, 0.8]  # same place, other class: kept (class-wise NMS)
    rows[0, 3] = [200, 160, 20, 20, 0.1, 1.0, 0.0]  # objectness 0.1: gated
    path = constant_model(tmp_path / "v5.onnx", {"output0": rows})
    det = build_detector(model_config(type="yolov5", path=str(path), labels=["ripe", "green"], input_size=320))
    assert isinstance(det, OnnxGenericDetector) and det.input_size == (320, 320)
    out = det.detect(blank_frame())
    assert out.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(out.xyxy[0], [160, 160, 320, 320], atol=1e-3)
    np.testing.assert_allclose(out.confidence, [0.81, 0.72], rtol=1e-5)
    assert out.label_names() == ["ripe", "green"]
    assert len(det.sha256) == 64 and det.name == "v5"


def test_yolov8_graph_channels_first_output_and_max_detections(tmp_path: Path) -> None:
    rows = np.zeros((1, 100, 4 + 3), np.float32)
    for i in range(10):  # ten separate boxes along the middle row
        rows[0, i] = [16 + 30 * i, 160, 20, 20, 0.3 + 0.05 * i, 0, 0]
    path = constant_model(tmp_path / "v8.onnx", {"output0": rows.transpose(0, 2, 1)}, transpose=("output0",))
    assert onnx.load(path).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 7  # emitted [1, 7, 100]
    det = build_detector(model_config(type="yolov8", path=str(path), labels=["a", "b", "c"], max_detections=4))
    out = det.detect(blank_frame(480, 640))
    assert len(out) == 4
    np.testing.assert_allclose(out.confidence, [0.75, 0.7, 0.65, 0.6], rtol=1e-5)
    np.testing.assert_allclose(out.xyxy[0], [(16 + 270 - 10) * 2, 150 * 2 - 80, (16 + 270 + 10) * 2, 170 * 2 - 80])


def test_yolo_e2e_graph(tmp_path: Path) -> None:
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [40, 110, 80, 150, 0.9, 2]
    rows[0, 1] = [41, 111, 81, 151, 0.8, 2]  # an e2e head may return overlaps; they are kept as given
    rows[0, 2] = [0, 0, 300, 60, 0.7, 1]  # entirely in the top padding: no area left in the frame
    path = constant_model(tmp_path / "e2e.onnx", {"output0": rows})
    out = build_detector(model_config(type="yolo_e2e", path=str(path), labels=COCO_STYLE)).detect(blank_frame())
    np.testing.assert_allclose(out.xyxy, [[160, 160, 320, 320], [164, 164, 324, 324]], atol=1e-3)
    assert out.class_id.tolist() == [2, 2]


def test_yolox_raw_graph_top_left_letterbox(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "yolox.onnx", {"output": yolox_raw()}, input_hw=(64, 64))
    det = build_detector(model_config(type="yolox", path=str(path), labels=["a", "b"]))
    assert det.input_size == (64, 64)
    out = det.detect(blank_frame(128, 256))  # scale 0.25, no padding before the image
    np.testing.assert_allclose(out.xyxy, [[96, 48, 224, 112]], atol=1e-3)
    with pytest.raises(ModelLoadError, match="decoded"):  # an anchor count that fits no grid is named at load
        constant_model(tmp_path / "bad.onnx", {"output": yolox_raw()[:, :80]}, input_hw=(64, 64))
        build_detector(model_config(type="yolox", path=str(tmp_path / "bad.onnx"), labels=["a", "b"]))


def test_nanodet_graph_single_and_split_outputs(tmp_path: Path) -> None:
    raw = nanodet_raw()
    single = constant_model(tmp_path / "nanodet.onnx", {"output": raw}, input_hw=(64, 64))
    split = constant_model(tmp_path / "picodet.onnx", {"scores": raw[:, :, :2], "boxes": raw[:, :, 2:]},
                           input_hw=(64, 64), transpose=("scores",))
    for path in (single, split):
        det = build_detector(model_config(type="nanodet", path=str(path), labels=["a", "b"], resize="stretch"))
        out = det.detect(blank_frame(128, 256))  # stretch: x * 4, y * 2
        np.testing.assert_allclose(out.xyxy, [[64, 0, 192, 48]], atol=1e-2)


def test_wrong_type_or_labels_fail_at_load_with_the_file_named(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "v8.onnx", {"output0": np.zeros((1, 84, 2100), np.float32)})
    with pytest.raises(ModelLoadError, match=r"v8.onnx: yolov8: expected \[1, 4 \+ 3 classes"):
        build_detector(model_config(type="yolov8", path=str(path), labels=["a", "b", "c"]))
    with pytest.raises(ModelLoadError, match="v8.onnx: yolov5"):
        build_detector(model_config(type="yolov5", path=str(path), labels=COCO_STYLE))
    with pytest.raises(ModelLoadError, match=r"input_size \[256, 256\] does not match"):
        build_detector(model_config(type="yolov8", path=str(path), labels=COCO_STYLE, input_size=256))
    with pytest.raises(ModelLoadError, match="nope.onnx.*not found"):
        build_detector(model_config(type="yolov8", path=str(tmp_path / "nope.onnx"), labels=COCO_STYLE))


# ---------------------------------------------------------------- the anchor exports (real layouts, random weights)
def anchors_dir() -> Path:
    return Path(os.environ.get("FIELDLINE_ANCHORS", REPO.parent / "shared" / "anchors")).resolve()


def anchor(name: str) -> Path:
    folder = anchors_dir()
    if not folder.is_dir():
        if "FIELDLINE_ANCHORS" in os.environ:
            pytest.fail(f"FIELDLINE_ANCHORS={os.environ['FIELDLINE_ANCHORS']} is not a folder")
        pytest.skip(reason=f"anchor exports not present at {folder} (set FIELDLINE_ANCHORS to the folder with "
                           f"yolo11n-320.onnx and yolo26n-e2e-320.onnx); the generated-graph tests cover the layouts")
    path = folder / name
    if not path.is_file():
        pytest.fail(f"{folder} exists but has no {name}: the anchors folder is incomplete")
    return path


@pytest.mark.parametrize("kind, name", [("yolov8", "yolo11n-320.onnx"), ("yolo_e2e", "yolo26n-e2e-320.onnx")])
def test_anchor_models_run_on_720p(kind: str, name: str) -> None:
    # threshold 0: random weights give tiny scores, so every stage (NMS, clipping, cap) has work to do
    det = build_detector(model_config(type=kind, path=str(anchor(name)), labels=COCO_STYLE,
                                      conf_threshold=0.0, max_detections=100, max_candidates=300))
    assert det.input_size == (320, 320) and det.labels == tuple(COCO_STYLE)
    frame = np.random.default_rng(7).integers(0, 256, (720, 1280, 3), np.uint8)
    out = det.detect(frame)
    assert_valid(out, frame, 80, 100)
    assert len(out) > 0
