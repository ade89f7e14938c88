"""Read what the registry needs from an ONNX file: FieldLine metadata, or what a foreign export says.

FieldLine exports (``models/detect/export.py``) carry ``fieldline.*`` metadata_props: name, version, labels (JSON
list), input_size, decoder, normalization, train_data_hash, calibrated thresholds. Foreign exports
(YOLOv5/v8/11, YOLOX, NanoDet...) carry none; their decoder is given at upload, and labels / input size are
taken from Ultralytics' own metadata (``names``, ``imgsz``) or the graph's input shape when present.

The file is parsed with ``onnx`` and checked with ``onnx.checker`` (no inference session: the device's
load test on a live frame is the real test); anything else is refused with a :class:`ModelFileError`
that names the problem.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

import onnx
from google.protobuf.message import DecodeError

META_PREFIX = "fieldline."
DECODERS = ("fieldline", "anomaly", "yolov5", "yolov8", "yolo_e2e", "yolox", "nanodet")  # edge ModelConfig types
_FIGURE_KEYS = ("count_conf", "reject_conf", "threshold")


class ModelFileError(ValueError):
    """The upload is not a usable ONNX model; the message says what is wrong."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    decoder: str
    labels: list[str]
    input_size: int | None
    train_data_hash: str | None
    fieldline_native: bool
    metadata: dict[str, str]  # fieldline.* without the prefix (native), or the foreign file's own props


def read_model(data: bytes, *, decoder: str | None = None, name: str | None = None, version: str | None = None,
               labels: list[str] | None = None) -> ModelInfo:
    """Parse and check ``data``; upload fields fill in (foreign) or must agree with (native) the file."""
    if decoder is not None and decoder not in DECODERS:
        raise ModelFileError(f"decoder {decoder!r} is not one of {', '.join(DECODERS)}")
    model = _parse(data)
    props = {p.key: p.value for p in model.metadata_props}
    native = {k[len(META_PREFIX):]: v for k, v in props.items() if k.startswith(META_PREFIX)}
    if native:
        return _native(native, decoder=decoder, name=name, version=version)
    return _foreign(model, props, decoder=decoder, name=name, version=version, labels=labels)


def _parse(data: bytes) -> onnx.ModelProto:
    if not data:
        raise ModelFileError("the upload is empty (expected an ONNX file)")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"not an ONNX file: the protobuf does not decode ({exc})") from None
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ModelFileError("not an ONNX model: no graph (no nodes, inputs or outputs); is this really a .onnx file?")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"ONNX checker refused the model: {first}") from None
    return model


def _native(meta: dict[str, str], *, decoder: str | None, name: str | None, version: str | None) -> ModelInfo:
    missing = [k for k in ("name", "version", "labels", "decoder") if not meta.get(k)]
    if missing:
        raise ModelFileError("FieldLine metadata is incomplete: missing " + ", ".join(f"fieldline.{k}" for k in missing))
    for field, given in (("decoder", decoder), ("name", name), ("version", version)):
        if given is not None and given != meta[field]:
            raise ModelFileError(f"{field}: the upload says {given!r} but the file's fieldline.{field} is "
                                 f"{meta[field]!r} (leave it out for FieldLine exports)")
    if meta["decoder"] not in DECODERS:
        raise ModelFileError(f"fieldline.decoder {meta['decoder']!r} is not one of {', '.join(DECODERS)}")
    try:
        labels = json.loads(meta["labels"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"fieldline.labels is not JSON: {exc.msg}") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelFileError("fieldline.labels must be a non-empty JSON list of strings")
    input_size = _int_or_none(meta.get("input_size"), "fieldline.input_size")
    return ModelInfo(name=meta["name"], version=meta["version"], decoder=meta["decoder"], labels=labels,
                     input_size=input_size, train_data_hash=meta.get("train_data_hash"), fieldline_native=True,
                     metadata=meta)


def _foreign(model: onnx.ModelProto, props: dict[str, str], *, decoder: str | None, name: str | None,
             version: str | None, labels: list[str] | None) -> ModelInfo:
    if decoder is None:
        raise ModelFileError("the file has no FieldLine metadata (a foreign export): say which decoder reads its "
                             f"outputs, one of {', '.join(d for d in DECODERS if d not in ('fieldline', 'anomaly'))}")
    if decoder in ("fieldline", "anomaly"):
        raise ModelFileError(f"decoder {decoder!r} needs FieldLine metadata in the file, which this file has not")
    if not name or not version:
        raise ModelFileError("a foreign export needs a name and a version at upload (the file does not carry them)")
    found = labels or _ultralytics_names(props.get("names"))
    if not found:
        raise ModelFileError("labels: the file does not list its classes; give them at upload (comma-separated)")
    size = _ultralytics_imgsz(props.get("imgsz")) or _graph_input_size(model)
    return ModelInfo(name=name, version=version, decoder=decoder, labels=found, input_size=size,
                     train_data_hash=None, fieldline_native=False, metadata=dict(props))


def _int_or_none(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ModelFileError(f"{what} must be an integer, got {value!r}") from None


def _ultralytics_names(raw: str | None) -> list[str] | None:
    """Ultralytics writes ``names`` as a Python dict literal: ``{0: 'person', 1: 'bicycle'}``."""
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict) and all(isinstance(v, str) for v in names.values()):
        return [names[k] for k in sorted(names)]
    return None


def _ultralytics_imgsz(raw: str | None) -> int | None:
    try:
        size = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError):
        return None
    if isinstance(size, list) and size and all(isinstance(v, int) for v in size):
        return max(size)
    return None


def _graph_input_size(model: onnx.ModelProto) -> int | None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    values = [d.dim_value for d in dims]
    return max(values[2:]) if len(values) == 4 and all(values[2:]) else None


def card_figures(info: ModelInfo, sha256: str, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Headline figures for the model list: calibrated thresholds from the file, accuracy and latency from the
    ``*.metrics.json`` written next to zoo models (the entry whose sha256 is this file's), when uploaded."""
    figures: dict[str, Any] = {}
    for key in _FIGURE_KEYS:
        if key in info.metadata:
            try:
                figures[key] = float(info.metadata[key])
            except ValueError:
                pass
    variants = metrics.get("models") if isinstance(metrics, dict) else None
    if isinstance(variants, dict):
        for variant, entry in variants.items():
            if isinstance(entry, dict) and entry.get("sha256") == sha256:
                figures["variant"] = variant
                for key in ("map50", "map50_95", "instances"):
                    if isinstance(entry.get(key), (int, float)):
                        figures[key] = entry[key]
                latency = entry.get("latency")
                if isinstance(latency, dict):
                    for key in ("session_median_ms", "session_p95_ms", "detect_median_ms"):
                        if isinstance(latency.get(key), (int, float)):
                            figures[f"latency_{key}"] = latency[key]
    return figures
