"""INT8 quantisation of a really trained model (the shared ``trained`` run of tests/models/conftest.py):
outputs close to FP32, 7-bit weights, the refusal ladder, the mixed-precision search, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
# the train extra is in the test environment (scripts/test.sh): a missing or broken torch fails, never skips
import torch  # noqa: F401
from onnx import numpy_helper
from typer.testing import CliRunner

from edge_agent.detectors import OnnxDetector
from models.cli.app import model_app
from models.data.sources import DataSource
from models.detect.evaluate import frames_map50
from models.detect.quantize import (HEAD_PREFIXES, QuantizationRefused, check_frames, network_nodes,
                             quantize, quantize_checked, rgb_convs, training_frames_warning)
from models.detect.quantize_search import block_of, network_blocks, search_fp32_blocks


@pytest.mark.parametrize("calibration", ["percentile", "minmax"])
def test_int8_outputs_stay_close_to_fp32(trained: dict, tmp_path: Path, calibration: str) -> None:
    src = DataSource.parse(str(trained["data"]), "yolo")
    q = quantize(trained["onnx"], tmp_path / "q.onnx", calib_count=20, source=src, calibration=calibration)
    f32, i8 = OnnxDetector(trained["onnx"]), OnnxDetector(q)
    assert i8.metadata["quantization"] == f"int8-qdq-per-channel-{calibration}-rgb-conv-fp32"
    graph = onnx.load(str(q)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    sigmoids = [(n.name.count("/") >= 2, producer.get(n.input[0])) for n in graph.node if n.op_type == "Sigmoid"]
    # the network's SiLU activations read INT8 (through QDQ), the top-level box decode stays float
    assert all((src == "DequantizeLinear") == inner for inner, src in sigmoids)
    assert {inner for inner, _ in sigmoids} == {True, False}
    assert i8.metadata["quantized_ops"] == "Conv,Relu,Sigmoid,Mul,Add"
    from edge_agent.detectors.preprocess import letterbox, to_tensor_rgb01

    score_diffs = []
    for img, _, _ in src.frames("val"):
        x = to_tensor_rgb01(letterbox(img, 160)[0])
        a = f32._session.run(None, {"images": x})[0][0]  # noqa: SLF001
        b = i8._session.run(None, {"images": x})[0][0]  # noqa: SLF001
        score_diffs.append(np.abs(a[:, 4:] - b[:, 4:]).ravel())
        top = a[:, 4:].max(1) > 0.3  # confident locations: boxes must survive INT8
        if top.any():
            assert np.abs(a[top, :4] - b[top, :4]).max() < 8.0  # px at 160 input
    # scores: typically 0.03 at the 99.9th percentile, a rare location up to ~0.16 (measured over several runs)
    score_diffs = np.concatenate(score_diffs)
    assert np.percentile(score_diffs, 99.9) < 0.08 and score_diffs.max() < 0.3


def test_rgb_conv_stays_float_unless_asked(trained: dict, tmp_path: Path) -> None:
    """The conv over the picture's 3 channels keeps float weights by default; ``rgb_conv_fp32=False`` (the CLI's
    --rgb-conv-int8) quantises it like the rest. Every other network conv is INT8 both ways."""
    src = DataSource.parse(str(trained["data"]), "yolo")
    rgb = rgb_convs(onnx.load(str(trained["onnx"])))
    assert len(rgb) == 1 and next(iter(rgb)).startswith("/stem/")

    def quantized_convs(path: Path) -> set[str]:
        graph = onnx.load(str(path)).graph
        producer = {out: n.op_type for n in graph.node for out in n.output}
        return {n.name for n in graph.node if n.op_type == "Conv" and producer.get(n.input[1]) == "DequantizeLinear"}

    network = {n for n in network_nodes(onnx.load(str(trained["onnx"]))) if "Conv" in n}
    default = quantize(trained["onnx"], tmp_path / "default.onnx", calib_count=8, source=src)
    assert quantized_convs(default) == network - rgb
    r = CliRunner().invoke(model_app, ["quantize", "--model", str(trained["onnx"]), "--out", str(tmp_path / "all.onnx"),
                                       "--data", str(trained["data"]), "--format", "yolo", "--calib-count", "8",
                                       "--max-drop", "1", "--no-search", "--rgb-conv-int8"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["rgb_conv_fp32"] is False
    assert quantized_convs(tmp_path / "all.onnx") == network
    assert not OnnxDetector(tmp_path / "all.onnx").metadata["quantization"].endswith("-rgb-conv-fp32")


def _int8_weight_extremes(path: Path) -> tuple[int, int]:
    ints = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
            if t.data_type == onnx.TensorProto.INT8 and t.dims]
    return int(min(a.min() for a in ints)), int(max(a.max() for a in ints))


def test_int8_weights_are_7_bit_unless_full_range_is_asked(trained: dict, tmp_path: Path) -> None:
    """7-bit weights keep onnxruntime's U8S8 int16 pair sums from saturating on x86 CPUs without VNNI
    (255 * 64 * 2 < 32767); --full-range gives 8-bit weights (every channel's largest weight at +-127)."""
    src = DataSource.parse(str(trained["data"]), "yolo")
    portable = quantize(trained["onnx"], tmp_path / "p.onnx", calib_count=8, source=src)
    full = quantize(trained["onnx"], tmp_path / "f.onnx", calib_count=8, source=src, reduce_range=False)
    lo, hi = _int8_weight_extremes(portable)
    assert -64 <= lo and hi <= 64 and max(-lo, hi) == 64
    lo, hi = _int8_weight_extremes(full)
    assert max(-lo, hi) == 127
    assert OnnxDetector(portable).metadata["int8_weights"] == "7bit-portable"
    assert OnnxDetector(full).metadata["int8_weights"] == "8bit-vnni"


def test_quantize_refuses_beyond_the_allowed_drop(trained: dict, tmp_path: Path) -> None:
    src = DataSource.parse(str(trained["data"]), "yolo")
    out = tmp_path / "q.onnx"
    with pytest.raises(ValueError, match="calibration 'entropy'"):
        quantize(trained["onnx"], out, source=src, calibration="entropy")
    with pytest.raises(QuantizationRefused, match="exceeds"):  # nothing can pass
        quantize_checked(trained["onnx"], out, src, calib_count=10, max_drop=-1.0, search=False)
    assert not out.exists()
    rep = quantize_checked(trained["onnx"], out, src, calib_count=10, max_drop=-1.0, force=True, search=False)
    # every calibration with the head in INT8, then in FP32; the best of them is written
    assert out.exists() and rep["forced"]
    assert [(a["scope"], a["head_fp32"], a["calibration"]) for a in rep["attempts"]] == [
        (scope, head, cal) for scope in ("layers", "conv") for head in (False, True) for cal in ("percentile", "minmax")]
    assert rep["drop"] == min(a["drop"] for a in rep["attempts"]) and rep["fp32_blocks"] == []
    written = OnnxDetector(out).metadata
    assert written["quantization"] == "int8-qdq-per-channel-{}{}-rgb-conv-fp32".format(
        rep["calibration"], "-head-fp32" if rep["head_fp32"] else "")
    assert written["quantized_ops"] == {"layers": "Conv,Relu,Sigmoid,Mul,Add", "conv": "Conv"}[rep["scope"]]
    kept = out.read_bytes()  # a refused run leaves an existing file alone
    with pytest.raises(QuantizationRefused, match="kept in FP32"):
        quantize_checked(trained["onnx"], out, src, calib_count=10, max_drop=-1.0, keep_head_fp32=True,
                         calibration="minmax")
    assert out.read_bytes() == kept
    rep = quantize_checked(trained["onnx"], out, src, calib_count=10, max_drop=1.0)
    assert "forced" not in rep and rep["attempts"][0]["head_fp32"] is False


def test_small_val_split_is_topped_up_with_training_pictures_the_calibration_did_not_see(trained: dict) -> None:
    src = DataSource.parse(str(trained["data"]), "yolo")
    val, train = src.split_size("val"), src.split_size("train")
    assert 0 < val < 20 < train - 10
    frames, check = check_frames(src, 20, calib_count=10)
    assert len(frames) == check["count"] == 20 and check["split"] == "val" and check["train_frames"] == 20 - val
    calibration = [img for img, _, _ in src.frames("train", 10)]
    for (img, _, _), expected in zip(frames, [*src.frames("val"), *list(src.frames("train"))[10:]]):
        assert np.array_equal(img, expected[0])
        assert not any(img.shape == c.shape and np.array_equal(img, c) for c in calibration)
    warning = training_frames_warning(check)
    assert warning.startswith(f"{20 - val} of the 20 check frames are training pictures (the val split has {val})")
    frames, check = check_frames(src, val, calib_count=10)  # enough validation pictures: nothing added
    assert len(frames) == val and check["train_frames"] == 0 and training_frames_warning(check) is None


def test_int8_file_does_not_inherit_the_fp32_counting_threshold(trained: dict, tmp_path: Path) -> None:
    """Scores change under INT8: a count threshold calibrated on the FP32 file must not ride along."""
    from models.detect.count_calibration import COUNT_CONF_KEY, SUMMARY_KEY
    from models.detect.export import set_metadata

    fp32 = tmp_path / "calibrated.onnx"
    proto = onnx.load(str(trained["onnx"]))
    set_metadata(proto, {COUNT_CONF_KEY: "0.47", SUMMARY_KEY: "{}"})
    onnx.save(proto, str(fp32))
    assert OnnxDetector(fp32, conf_threshold=None).conf_threshold == 0.47
    q = quantize(fp32, tmp_path / "q.onnx", calib_count=8, source=DataSource.parse(str(trained["data"]), "yolo"))
    meta = OnnxDetector(q).metadata
    assert "count_conf" not in meta and "count_calibration" not in meta and "labels" in meta
    assert OnnxDetector(q, conf_threshold=None).conf_source == "default"




def test_block_names_group_a_module_and_its_shared_calls() -> None:
    assert block_of("/head/head.0/dw/dw.0_1/Conv") == block_of("/head/head.0/pw/pw.0/Conv") == "head/head.0"
    assert block_of("/reg_1/Conv") == block_of("/reg/Conv") == "reg"
    assert block_of("/s3/s3.0/Add") == block_of("/s3/s3.0/dw/dw.0/Sigmoid") == "s3/s3.0"
    assert network_blocks(["/stem/stem.0/stem.0.0/Conv", "/cls/Conv", "/stem/stem.0/stem.0.0/Sigmoid",
                           "/cls_1/Conv"]) == ["stem/stem.0", "cls"]


def _penalty_measure(base: float, penalty: dict[str, float], made: list[tuple[str, ...]]):
    """A file's mAP50 = FP32's minus the loss of every block left in INT8 (the blocks' losses add up)."""
    def measure(fp32_blocks: tuple[str, ...]) -> float:
        made.append(fp32_blocks)
        return base - sum(p for b, p in penalty.items() if b not in fp32_blocks)
    return measure


def test_search_ranks_blocks_alone_then_keeps_the_worst_together_until_within_the_limit() -> None:
    penalty = {"a": 0.0, "b": 0.03, "c": 0.01, "d": 0.02, "e": 0.0, "f": 0.0}
    made: list[tuple[str, ...]] = []
    attempts = search_fp32_blocks(list(penalty), _penalty_measure(0.9, penalty, made), 0.9, 0.84, max_drop=0.015)
    # each block alone (none is enough), then b (0.87 alone) with d (0.86): drop 0.01
    assert made == [("a",), ("b",), ("c",), ("d",), ("e",), ("f",), ("b", "d")]
    assert attempts[-1] == {"fp32_blocks": ["b", "d"], "map50": pytest.approx(0.89), "drop": 0.01}
    assert [a["drop"] for a in attempts[:6]] == [0.06, 0.03, 0.05, 0.04, 0.06, 0.06]


def test_search_stops_at_the_first_block_that_is_enough_and_at_half_the_blocks() -> None:
    penalty = {"a": 0.0, "b": 0.03, "c": 0.01, "d": 0.02, "e": 0.0, "f": 0.0}
    made: list[tuple[str, ...]] = []
    search_fp32_blocks(list(penalty), _penalty_measure(0.9, penalty, made), 0.9, 0.84, max_drop=0.035)
    assert made == [("a",), ("b",)]
    made.clear()  # nothing is enough: at most half of the six blocks go FP32, only those that helped alone
    attempts = search_fp32_blocks(list(penalty), _penalty_measure(0.9, penalty, made), 0.9, 0.84, max_drop=-0.01)
    assert made[6:] == [("b", "d"), ("b", "d", "c")] and attempts[-1]["drop"] == 0.0
    made.clear()  # no block helps alone: nothing to combine
    search_fp32_blocks(list(penalty), _penalty_measure(0.9, {"a": 0.0}, made), 0.9, 0.9, max_drop=-0.01)
    assert len(made) == 6


def test_mixed_precision_search_keeps_the_chosen_blocks_in_fp32(trained: dict, tmp_path: Path) -> None:
    """Nothing passes a negative limit: the ladder, then the search from its best attempt; the written file is the
    best of all, its FP32 blocks really are float, and its mAP50 is the one reported."""
    src = DataSource.parse(str(trained["data"]), "yolo")
    out = tmp_path / "mixed.onnx"
    rep = quantize_checked(trained["onnx"], out, src, calib_count=10, max_drop=-1.0, force=True)
    ladder, searched = rep["attempts"][:8], rep["attempts"][8:]
    assert all(not a["fp32_blocks"] for a in ladder)
    start = min(ladder, key=lambda a: a["drop"])
    blocks = network_blocks(network_nodes(onnx.load(str(trained["onnx"])), start["head_fp32"], start["scope"],
                                          rgb_conv_fp32=True))
    assert "cls" in blocks or start["head_fp32"]
    assert [a["fp32_blocks"] for a in searched[:len(blocks)]] == [[b] for b in blocks]
    assert all((a["scope"], a["calibration"], a["head_fp32"]) == (start["scope"], start["calibration"],
                                                                   start["head_fp32"]) for a in searched)
    assert rep["drop"] == min(a["drop"] for a in rep["attempts"])
    checked_on = check_frames(src, 200, calib_count=10)[0]  # the val split and unseen training pictures
    assert rep["check"]["count"] == len(checked_on) and rep["check"]["train_frames"] > 0
    assert frames_map50(out, checked_on) == pytest.approx(rep["int8_map50"], abs=1e-4)
    if not rep["fp32_blocks"]:  # the ladder's file stayed the best: the search is still checked on a file below
        rep["fp32_blocks"] = searched[0]["fp32_blocks"]
        quantize(trained["onnx"], out, calib_count=10, source=src, calibration=start["calibration"],
                 scope=start["scope"], keep_head_fp32=start["head_fp32"], fp32_blocks=rep["fp32_blocks"])
    graph = onnx.load(str(out)).graph
    meta = OnnxDetector(out).metadata
    assert meta["fp32_blocks"] == ",".join(rep["fp32_blocks"]) and meta["quantization"].endswith("-mixed")
    producer = {o: n.op_type for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv" and n.name.count("/") >= 1 and n.name.startswith("/")]
    rgb = rgb_convs(onnx.load(str(trained["onnx"])))
    for conv in convs:  # float: the chosen blocks, the RGB conv, and the whole head when the search started from a
        float_head = start["head_fp32"] and conv.name.startswith(HEAD_PREFIXES)  # head-FP32 file
        weight_quantized = producer.get(conv.input[1]) == "DequantizeLinear"
        assert weight_quantized == (block_of(conv.name) not in rep["fp32_blocks"] and not float_head
                                    and conv.name not in rgb), conv.name


def test_unknown_fp32_block_is_a_clear_error(trained: dict, tmp_path: Path) -> None:
    src = DataSource.parse(str(trained["data"]), "yolo")
    with pytest.raises(ValueError, match=r"no network block named nope \(blocks: stem/stem.0"):
        quantize(trained["onnx"], tmp_path / "q.onnx", calib_count=4, source=src, fp32_blocks=["nope"])


def test_cli_search_flag_reaches_the_search(trained: dict, tmp_path: Path) -> None:
    common = ["quantize", "--model", str(trained["onnx"]), "--data", str(trained["data"]), "--format", "yolo",
              "--calib-count", "8", "--max-drop", "-1", "--force"]
    r = CliRunner().invoke(model_app, [*common, "--out", str(tmp_path / "a.onnx"), "--no-search"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert len(report["attempts"]) == 8 and report["forced"]
    # the small val split was topped up with training pictures: said on stderr and in the report
    assert report["check"]["train_frames"] > 0 and "training pictures" in report["check"]["warning"]
    assert "warning: " in r.stderr and "check frames are training pictures" in r.stderr
    r = CliRunner().invoke(model_app, [*common, "--out", str(tmp_path / "b.onnx")])
    assert r.exit_code == 0, r.output
    assert any(a["fp32_blocks"] for a in json.loads(r.output.strip().splitlines()[-1])["attempts"])
