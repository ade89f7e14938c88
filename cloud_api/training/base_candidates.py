"""The models a training job can start from, for the /training page: zoo FP32 detectors and registered FP32
FieldLine files, with how many devices run each (the page preselects the model in service)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from cloud_api.training.base_model import ZOO, BaseModelError, read


def _zoo_file(path: Path) -> dict[str, Any] | None:
    """A zoo FP32 FieldLine detector as a candidate, or None (INT8, anomaly model, foreign file)."""
    try:
        base = read(path)
    except (BaseModelError, KeyError, ValueError, OSError):
        return None
    return {"base_model": path.stem, "source": "zoo", "name": base.name, "version": base.version,
            "labels": list(base.labels), "sha256": base.sha256}


_ZOO_CACHE: dict[tuple[str, int, int], dict[str, Any] | None] = {}


def candidates(models: list[Any], devices: list[Any], zoo: Path = ZOO) -> list[dict[str, Any]]:
    """What a training job can start from: zoo FP32 detectors and registered FP32 FieldLine files, each with
    ``devices``, how many devices run that name and version now (FP32 or INT8 file: the page's default is the
    model in service). Most devices first, then registered before zoo, newest first."""
    running = Counter(((d.model or {}).get("name"), (d.model or {}).get("version")) for d in devices)
    out: list[dict[str, Any]] = []
    for m in sorted(models, key=lambda m: -m.uploaded_ms):
        if m.decoder == "fieldline" and m.fieldline_native and "quantization" not in m.metadata:
            out.append({"base_model": m.sha256, "source": "registry", "name": m.name, "version": m.version,
                        "labels": list(m.labels), "sha256": m.sha256})
    for path in sorted(zoo.glob("*.onnx")):
        if path.name.endswith(".int8.onnx"):
            continue
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _ZOO_CACHE:
            _ZOO_CACHE[key] = _zoo_file(path)
        if _ZOO_CACHE[key] is not None and all(c["sha256"] != _ZOO_CACHE[key]["sha256"] for c in out):
            out.append(dict(_ZOO_CACHE[key]))  # type: ignore[arg-type]
    for c in out:
        c["devices"] = running.get((c["name"], c["version"]), 0)
    return sorted(out, key=lambda c: -c["devices"])  # stable: registered (newest first) before zoo
