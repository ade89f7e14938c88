"""The model registry: ONNX files stored by sha256 under ``{data_dir}/models/``, described in the database."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from cloud_api.fleet.onnx_meta import ModelFileError, card_figures, read_model
from cloud_api.fleet.records import AuditRecord, ModelRecord

MAX_MODEL_BYTES = 200 * 1024 * 1024  # the edge agent's OTA refuses larger files too
MAX_CARD_BYTES = 256 * 1024


class RegistryStore(Protocol):
    def add_model(self, model: ModelRecord, audit: AuditRecord) -> bool: ...

    def get_model(self, sha256: str) -> ModelRecord | None: ...

    def list_models(self) -> list[ModelRecord]: ...


class ModelRegistry:
    def __init__(self, store: RegistryStore, data_dir: Path) -> None:
        self._store = store
        self.dir = Path(data_dir) / "models"

    def path_of(self, sha256: str) -> Path:
        return self.dir / f"{sha256}.onnx"

    def add(self, data: bytes, *, actor: str, role: str, now_ms: int, decoder: str | None = None,
            name: str | None = None, version: str | None = None, labels: list[str] | None = None,
            card: str | None = None, metrics: str | None = None) -> tuple[ModelRecord, bool]:
        """Check, store and register one file; returns (record, created). Raises ``ModelFileError``."""
        if len(data) > MAX_MODEL_BYTES:
            raise ModelFileError(f"the file is {len(data)} bytes, the limit is {MAX_MODEL_BYTES}")
        if card is not None and len(card.encode("utf-8")) > MAX_CARD_BYTES:
            raise ModelFileError(f"card: longer than {MAX_CARD_BYTES} bytes")
        parsed_metrics = _metrics(metrics)
        info = read_model(data, decoder=decoder, name=name, version=version, labels=labels)
        sha256 = hashlib.sha256(data).hexdigest()
        existing = self._store.get_model(sha256)
        if existing is not None:
            return existing, False
        self._write_file(sha256, data)  # the file first: a row never points at a missing file
        record = ModelRecord(
            sha256=sha256, name=info.name, version=info.version, decoder=info.decoder, labels=info.labels,
            input_size=info.input_size, train_data_hash=info.train_data_hash, fieldline_native=info.fieldline_native,
            size_bytes=len(data), metadata=info.metadata, card=card,
            figures=card_figures(info, sha256, parsed_metrics), uploaded_by=actor, uploaded_ms=now_ms)
        audit = AuditRecord(id=0, ts_ms=now_ms, actor=actor, role=role, action="model.upload", target_kind="model",
                            target=sha256, result="ok",
                            detail={"name": info.name, "version": info.version, "decoder": info.decoder,
                                    "bytes": len(data), "fieldline_native": info.fieldline_native})
        created = self._store.add_model(record, audit)
        return (record if created else self._store.get_model(sha256) or record), created

    def _write_file(self, sha256: str, data: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.path_of(sha256)
        if target.is_file() and target.stat().st_size == len(data):
            return
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _metrics(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"metrics: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise ModelFileError("metrics: must be a JSON object (the *.metrics.json written next to a zoo model)")
    return value
