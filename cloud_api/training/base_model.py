"""The model a job starts from: a zoo model by name or a registered file by sha256, read for what the job needs."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from models.zoo_index import ZOO

SHA256 = re.compile(r"^[0-9a-f]{64}$")
ZOO_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
HOLDOUT_SEED = 20261  # the zoo cards' holdout seed: never used in training


class BaseModelError(ValueError):
    """The base model cannot be found or used; the message says which and why."""


@dataclass(frozen=True)
class BaseModel:
    path: Path
    sha256: str
    name: str
    version: str
    labels: tuple[str, ...]
    input_size: int

    def holdout_source(self) -> str | None:
        """The generator whose fresh frames are the original holdout (the labels decide), or None."""
        from models.data.sources import synth_labels

        for name in ("tomato", "surface"):
            if tuple(synth_labels(name)) == self.labels:
                return f"synth:{name}"
        return None


def resolve(spec: str, registry_path: callable, known_sha256: callable) -> BaseModel:  # type: ignore[valid-type]
    """``spec``: a zoo name (``tomato-ripeness``) or a registered sha256. ``registry_path(sha)`` gives the file
    of a registered model, ``known_sha256(sha)`` whether it is registered."""
    if SHA256.match(spec):
        if not known_sha256(spec):
            raise BaseModelError(f"base_model {spec}: no registered model has this sha256")
        path = Path(registry_path(spec))
    elif ZOO_NAME.match(spec) and (ZOO / f"{spec}.onnx").is_file():
        path = ZOO / f"{spec}.onnx"
    else:
        raise BaseModelError(f"base_model {spec!r}: neither a zoo model name nor the sha256 of a registered model")
    return read(path)


def read(path: Path) -> BaseModel:
    """Name, version, labels and input size of a FieldLine FP32 ONNX file (no PyTorch in the API process: the
    network shape is read by the worker, see ``train_proc --shape-flags``)."""
    data = path.read_bytes()
    model = onnx.load_from_string(data)
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("fieldline.decoder") != "fieldline":
        raise BaseModelError(f"{path.name}: not a FieldLine detector (decoder {meta.get('fieldline.decoder')!r}); "
                             "training jobs fine-tune FieldLine detectors")
    if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        raise BaseModelError(f"{path.name}: an INT8 file; start from the FP32 file of that version")
    return BaseModel(path=path, sha256=hashlib.sha256(data).hexdigest(), name=meta.get("fieldline.name", path.stem),
                     version=meta.get("fieldline.version", "0"), labels=tuple(json.loads(meta["fieldline.labels"])),
                     input_size=int(meta.get("fieldline.input_size", "320")))
