"""Export a trained detector checkpoint to the FieldLine-native ONNX contract (labels etc. in metadata)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import onnx
import torch

from models.detect.net import SIZE_MULTIPLE, NetSpec, TomatoNet
from models.detect.tta import FLIP_SETS, FlipAveraged
from models.data.synth.tomato import LABELS

INPUT_SIZE = 320


def fieldline_metadata(name: str, version: str, train_data_hash: str, labels: tuple[str, ...] = LABELS,
                       input_size: int = INPUT_SIZE, flips: str = "none") -> dict[str, str]:
    return {
        "fieldline.labels": json.dumps(list(labels)),
        "fieldline.input_size": str(input_size),
        "fieldline.normalization": "rgb_0_1",
        "fieldline.decoder": "fieldline",
        "fieldline.name": name,
        "fieldline.version": version,
        "fieldline.train_data_hash": train_data_hash,
        "fieldline.flips": flips,  # test-time mirror averaging inside the graph (models/detect/tta.py)
        "fieldline.size_multiple": str(SIZE_MULTIPLE),  # the input sides a dynamic-size file accepts
    }


def set_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for k, v in meta.items():
        if k in existing:
            existing[k].value = v
        else:
            model.metadata_props.add(key=k, value=v)


def load_checkpoint(checkpoint: Path) -> tuple[TomatoNet, dict]:
    """A ``best.pt`` -> (net in eval mode, info with labels, input_size and the :class:`NetSpec` fields).

    Checkpoints written before the trainer recorded labels hold only the EMA state dict of the
    3-class tomato net; they load with the tomato labels.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    info: dict = {"labels": list(LABELS), "input_size": INPUT_SIZE}
    if isinstance(state, dict) and "ema" in state:
        if "opt" in state and "width" not in state:
            raise ValueError(f"{checkpoint}: a training-state checkpoint written before it recorded the network "
                             "shape; export best.pt from the same folder (or resume the run once to rewrite it)")
        info.update({k: state[k] for k in ("labels", "input_size", "backbone_record") if k in state})
        spec = NetSpec.from_dict(state)
        state = state["ema"]
    else:
        spec = NetSpec()
    info.update(spec.to_dict())
    net = TomatoNet(len(info["labels"]), spec=spec)
    net.load_state_dict(state)
    net.eval()
    return net, info


def export_net(net: TomatoNet, out: Path, labels: tuple[str, ...] | list[str], name: str, version: str,
               train_data_hash: str = "unknown", input_size: int = INPUT_SIZE, flips: str = "none",
               dynamic_size: bool = True, backbone: dict | None = None) -> Path:
    """Trained net -> ONNX with input ``images`` [1,3,S,S] and output ``detections`` [1,N,4+C] + metadata.

    ``input_size`` S is the size recorded in the metadata (the one the model was measured at). With
    ``dynamic_size`` the graph's height and width are free (any multiple of ``SIZE_MULTIPLE``), so the edge
    agent can run the same file at another size or on a tighter, non-square letterbox; same speed and
    outputs at S as a fixed-size export. ``flips`` other than ``none`` averages the net's output maps over
    mirror images of the input inside the graph (:mod:`models.detect.tta`): same contract, one extra pass per mirror.
    ``backbone``: the record of a pretrained trunk (name, package, version, licence, sha256) for the metadata.
    """
    was_training, net.export_mode = net.training, True
    net.eval()
    graph: torch.nn.Module = net if flips == "none" else FlipAveraged(net, flips)
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is deliberate: the dynamo one needs onnxscript and gives the same graph here
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*",
                                    category=DeprecationWarning)
            torch.onnx.export(graph, (torch.zeros(1, 3, input_size, input_size),), buf, dynamo=False,
                              opset_version=17, input_names=["images"], output_names=["detections"],
                              do_constant_folding=True,
                              dynamic_axes={"images": {2: "height", 3: "width"}, "detections": {1: "boxes"}}
                              if dynamic_size else None)
    finally:
        net.export_mode = False
        net.train(was_training)
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "fieldline"
    model.doc_string = f"FieldLine {name} {version}: boxes xyxy in letterboxed input px + class probs"
    set_metadata(model, fieldline_metadata(name, version, train_data_hash, tuple(labels), input_size, flips))
    if backbone:
        set_metadata(model, {"fieldline.backbone": json.dumps(backbone, sort_keys=True)})
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out)
    return out


def export(checkpoint: Path, out: Path, name: str = "tomato-ripeness", version: str = "1.0.0",
           train_data_hash: str = "unknown", input_size: int | None = None, flips: str = "none",
           dynamic_size: bool = True) -> Path:
    """Checkpoint (``best.pt`` of :func:`models.detect.train.train`) -> FieldLine-native ONNX."""
    if flips not in FLIP_SETS:
        raise ValueError(f"unknown flips {flips!r}; choose one of {', '.join(FLIP_SETS)}")
    net, info = load_checkpoint(Path(checkpoint))
    return export_net(net, out, info["labels"], name, version, train_data_hash,
                      int(input_size or info["input_size"]), flips, dynamic_size, info.get("backbone_record"))
