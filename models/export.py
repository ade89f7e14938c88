"""Export a trained TomatoNet checkpoint to the FieldLine-native ONNX contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import onnx
import torch

from models.net import TomatoNet
from models.synth.tomato import LABELS

INPUT_SIZE = 320


def fieldline_metadata(name: str, version: str, train_data_hash: str, labels: tuple[str, ...] = LABELS,
                       input_size: int = INPUT_SIZE) -> dict[str, str]:
    return {
        "fieldline.labels": json.dumps(list(labels)),
        "fieldline.input_size": str(input_size),
        "fieldline.normalization": "rgb_0_1",
        "fieldline.decoder": "fieldline",
        "fieldline.name": name,
        "fieldline.version": version,
        "fieldline.train_data_hash": train_data_hash,
    }


def set_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for k, v in meta.items():
        if k in existing:
            existing[k].value = v
        else:
            model.metadata_props.add(key=k, value=v)


def export(checkpoint: Path, out: Path, name: str = "tomato-ripeness", version: str = "1.0.0",
           train_data_hash: str = "unknown", input_size: int = INPUT_SIZE) -> Path:
    """Checkpoint (EMA state dict) -> ONNX with input ``images`` and output ``detections``."""
    net = TomatoNet(len(LABELS))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net.load_state_dict(state["ema"] if "ema" in state else state)
    net.eval()
    net.export_mode = True
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (torch.zeros(1, 3, input_size, input_size),), buf, dynamo=False,
                          opset_version=17, input_names=["images"], output_names=["detections"],
                          do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "fieldline"
    model.doc_string = f"FieldLine {name} {version}: boxes xyxy in letterboxed input px + class probs"
    set_metadata(model, fieldline_metadata(name, version, train_data_hash, LABELS, input_size))
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out)
    return out
