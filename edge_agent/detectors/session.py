"""Opening ONNX files for every detector kind: one place for session options, load errors and file hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import onnxruntime as ort

META_PREFIX = "fieldline."
COUNT_CONF_META = "count_conf"  # score threshold picked so counts match labels (`fieldline model calibrate`)
COUNT_CALIBRATION_META = "count_calibration"  # JSON: how it was picked (data, frames, count errors)
REJECT_CONF_META = "reject_conf"  # inspection pass/reject threshold within a false-reject budget
REJECT_CALIBRATION_META = "reject_calibration"  # JSON: how it was picked (budget, false rejects, escapes)
CALIBRATED_THRESHOLD_KEYS = tuple(META_PREFIX + k for k in (COUNT_CONF_META, COUNT_CALIBRATION_META,
                                                            REJECT_CONF_META, REJECT_CALIBRATION_META))


class ModelLoadError(Exception):
    """The model file is missing, not a valid ONNX model, or lacks what its decoder needs."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_session(path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads; :class:`ModelLoadError` naming the file on failure."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: not a valid ONNX model ({first})") from exc


def fieldline_metadata(session: ort.InferenceSession) -> dict[str, str]:
    """The ``fieldline.*`` metadata of a loaded model, without the prefix."""
    raw = session.get_modelmeta().custom_metadata_map
    return {k[len(META_PREFIX):]: v for k, v in raw.items() if k.startswith(META_PREFIX)}


class ModelFileInfo:
    """Identity of a model loaded from a FieldLine ONNX file (needs ``path``, ``_metadata`` and ``_sha256``)."""

    path: Path
    _metadata: dict[str, str]
    _sha256: str

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def name(self) -> str:
        return self._metadata.get("name", self.path.stem)

    @property
    def version(self) -> str:
        return self._metadata.get("version", "0")
