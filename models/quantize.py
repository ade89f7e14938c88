"""Static INT8 (QDQ, per-channel) quantisation with onnxruntime, calibrated on training-distribution frames.

:func:`quantize_checked` measures mAP50 of FP32 and INT8 on held-out frames; when INT8 loses more than
``max_drop`` it retries with the head convolutions in FP32, and refuses (deletes the file, raises
:class:`QuantizationRefused`) if that still loses too much, unless ``force``.

Calibration frames go through exactly the detector's letterbox + normalisation. Only Conv ops are
quantised: the in-graph box decode concatenates pixel coordinates (0..320) with probabilities
(0..1), and one shared INT8 scale for that tensor would wipe out the scores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edge_agent.detectors.preprocess import letterbox, to_tensor_rgb01
from models.data_sources import DataSource
from models.evaluate import evaluate

CALIB_SEED = 4242


CHECK_SEED = 5151  # not the tests' 777 nor the card holdout 20261


class QuantizationRefused(RuntimeError):
    """INT8 lost more mAP than allowed; the message gives both figures."""


class FrameCalibration(CalibrationDataReader):
    """Training frames through exactly the detector's letterbox + normalisation."""

    def __init__(self, input_name: str, input_size: int, count: int, seed: int, source: DataSource | None = None):
        source = source or DataSource.parse("synth:tomato")
        self._frames = (to_tensor_rgb01(letterbox(img, input_size)[0])
                        for img, _, _ in source.frames("train", count, seed))
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._frames, None)
        return None if x is None else {self._name: x}


def head_conv_nodes(model: onnx.ModelProto) -> list[str]:
    """The detection head's convolutions (shared head blocks + final cls/reg), kept FP32 on request.

    Measured on the NEU-DET model: the final convs alone in FP32 recover about half of the INT8 loss, the
    whole head a little more; the backbone and neck stay INT8 (they hold most of the compute).
    """
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and n.name.startswith(("/cls", "/reg", "/head"))]


def quantize(fp32: Path, out: Path, calib_count: int = 100, seed: int = CALIB_SEED,
             keep_head_fp32: bool = False, source: DataSource | None = None) -> Path:
    src = onnx.load(str(fp32))
    meta = {p.key: p.value for p in src.metadata_props}
    size = int(meta.get("fieldline.input_size", "320"))
    input_name = src.graph.input[0].name
    exclude = head_conv_nodes(src) if keep_head_fp32 else []
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), FrameCalibration(input_name, size, calib_count, seed, source),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"], per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    q = onnx.load(str(out))
    del q.metadata_props[:]
    for k, v in meta.items():
        q.metadata_props.add(key=k, value=v)
    q.metadata_props.add(key="fieldline.quantization",
                         value="int8-qdq-per-channel" + ("-head-fp32" if keep_head_fp32 else ""))
    onnx.save(q, str(out))
    return Path(out)


def quantize_checked(fp32: Path, out: Path, source: DataSource | None = None, calib_count: int = 100,
                     check_count: int = 200, max_drop: float = 0.01, force: bool = False,
                     keep_head_fp32: bool = False) -> dict:
    """Quantise, compare mAP50 with FP32 on held-out frames, fall back to an FP32 head, refuse beyond ``max_drop``."""
    source = source or DataSource.parse("synth:tomato")
    if source.is_synthetic:
        check = {"data": source, "count": check_count, "seed": CHECK_SEED}
    else:
        split = "val" if source.split_size("val") else "test"
        check = {"data": source, "count": check_count, "split": split}
    base = evaluate(fp32, **check)["map50"]
    attempts = []
    for head_fp32 in ([True] if keep_head_fp32 else [False, True]):
        quantize(fp32, out, calib_count, keep_head_fp32=head_fp32, source=source)
        q = evaluate(out, **check)["map50"]
        attempts.append({"head_fp32": head_fp32, "map50": q, "drop": round(base - q, 4)})
        if base - q <= max_drop:
            break
    report = {"fp32_map50": base, "int8_map50": attempts[-1]["map50"], "drop": attempts[-1]["drop"],
              "head_fp32": attempts[-1]["head_fp32"], "attempts": attempts, "max_drop": max_drop,
              "check": {k: (v.describe() if isinstance(v, DataSource) else v) for k, v in check.items()},
              "out": str(out)}
    if attempts[-1]["drop"] > max_drop:
        if not force:
            Path(out).unlink(missing_ok=True)
            raise QuantizationRefused(
                f"INT8 mAP50 {attempts[-1]['map50']:.3f} vs FP32 {base:.3f}: a drop of "
                f"{100 * attempts[-1]['drop']:.1f} points exceeds {100 * max_drop:.1f} (even with the head in FP32); "
                f"nothing written. Use --force to keep it anyway, or calibrate on more frames (--calib-count).")
        report["forced"] = True
    return report
