"""Static INT8 (QDQ, per-channel) quantisation with onnxruntime, calibrated on synthetic frames.

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
from models.evaluate import synth_frames

CALIB_SEED = 4242


class SynthCalibration(CalibrationDataReader):
    def __init__(self, input_name: str, input_size: int, count: int, seed: int):
        self._frames = (to_tensor_rgb01(letterbox(img, input_size)[0])
                        for img, _, _ in synth_frames("synth:tomato", count, seed))
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._frames, None)
        return None if x is None else {self._name: x}


def head_conv_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the final classification/regression convolutions (kept FP32 on request)."""
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and (n.name.startswith("/cls") or n.name.startswith("/reg"))]


def quantize(fp32: Path, out: Path, calib_count: int = 100, seed: int = CALIB_SEED,
             keep_head_fp32: bool = False) -> Path:
    src = onnx.load(str(fp32))
    meta = {p.key: p.value for p in src.metadata_props}
    size = int(meta.get("fieldline.input_size", "320"))
    input_name = src.graph.input[0].name
    exclude = head_conv_nodes(src) if keep_head_fp32 else []
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), SynthCalibration(input_name, size, calib_count, seed),
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
