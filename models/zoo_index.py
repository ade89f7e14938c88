"""The shipped model zoo: where the files are and which file of a model is its default."""

from __future__ import annotations

import json
from pathlib import Path

ZOO = Path(__file__).resolve().parent / "zoo"


def default_file(name: str, zoo: Path = ZOO) -> Path:
    """The file a model's card names as default (the faster of FP32 and INT8 when measured), else its INT8 file."""
    metrics = zoo / f"{name}.metrics.json"
    tag = json.loads(metrics.read_text()).get("default", "int8") if metrics.exists() else "int8"
    path = zoo / (f"{name}.onnx" if tag == "fp32" else f"{name}.int8.onnx")
    if not path.exists():
        raise FileNotFoundError(f"{path}: the zoo has no {tag} file for {name}")
    return path
