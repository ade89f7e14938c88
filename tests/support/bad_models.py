"""Broken variants of a real FieldLine model, for rollout tests: each loads and passes a self-test on a frame.

- ``garbage_model``: the real outputs plus a constant grid of confident boxes, so every frame "sees" dozens of
  extra objects (counts jump; nothing crashes);
- ``slow_model``: the real outputs plus zero times the sum of a heavy dummy subgraph fed from the input (a chain
  of MatMuls ONNX Runtime cannot fold away), so each frame costs many times more;
- ``corrupt_stored_file``: flips bytes of a registry file on the API's disk (bit rot after upload), so the sha256
  a device computes no longer matches.

Each variant gets its own ``fieldline.version`` so the registry lists it as a version of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _set_version(model: onnx.ModelProto, version: str) -> None:
    for prop in model.metadata_props:
        if prop.key == "fieldline.version":
            prop.value = version


def _rename_output(model: onnx.ModelProto) -> tuple[str, str]:
    """Let the original graph end in ``{name}_real``; returns (real, final) output names."""
    final = model.graph.output[0].name
    real = f"{final}_real"
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == final:
                node.output[i] = real
    return real, final


def garbage_model(source: Path, target: Path, version: str = "9.0.0-garbage", boxes: int = 48) -> Path:
    model = onnx.load(str(source))
    real, final = _rename_output(model)
    classes = len(model.graph.output[0].type.tensor_type.shape.dim) and 3  # [1, N, 4 + C]
    side = int(np.ceil(np.sqrt(boxes)))
    rows = []
    for i in range(boxes):  # a non-overlapping grid over the 576 px input: NMS keeps every one
        x, y = (i % side) * 60 + 8, (i // side) * 60 + 8
        rows.append([x, y, x + 40, y + 40] + [0.0] * (classes - 1) + [0.99])
    extra = numpy_helper.from_array(np.asarray([rows], dtype=np.float32), "garbage_boxes")
    model.graph.initializer.append(extra)
    model.graph.node.append(helper.make_node("Concat", [real, "garbage_boxes"], [final], axis=1))
    _set_version(model, version)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def slow_model(source: Path, target: Path, version: str = "9.0.0-slow", matmuls: int = 24, size: int = 768) -> Path:
    model = onnx.load(str(source))
    real, final = _rename_output(model)
    image = model.graph.input[0].name
    g = model.graph
    g.initializer.extend([
        numpy_helper.from_array(np.eye(size, dtype=np.float32), "slow_w"),
        numpy_helper.from_array(np.ones((size, size), dtype=np.float32), "slow_ones"),
        numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "slow_zero"),
    ])
    g.node.append(helper.make_node("ReduceMean", [image], ["slow_mean"], keepdims=0))
    g.node.append(helper.make_node("Mul", ["slow_ones", "slow_mean"], ["slow_0"]))
    for i in range(matmuls):
        g.node.append(helper.make_node("MatMul", [f"slow_{i}", "slow_w"], [f"slow_{i + 1}"]))
    g.node.append(helper.make_node("ReduceSum", [f"slow_{matmuls}"], ["slow_sum"], keepdims=0))
    g.node.append(helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]))
    g.node.append(helper.make_node("Add", [real, "slow_nothing"], [final]))
    g.value_info.append(helper.make_tensor_value_info("slow_nothing", TensorProto.FLOAT, [1]))
    _set_version(model, version)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def corrupt_stored_file(data_dir: Path, sha256: str) -> Path:
    """Flip bytes in the middle of the API's stored copy of a registered model."""
    path = data_dir / "models" / f"{sha256}.onnx"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))
    return path
