"""Request and response models of the fleet routes (models, commands, audit)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud_api.fleet.commands import redact
from cloud_api.fleet.records import AuditRecord, CommandRecord, ModelRecord


class ModelOut(BaseModel):
    sha256: str = Field(description="SHA-256 of the ONNX file: its identity in the registry")
    name: str
    version: str
    decoder: str = Field(description="Edge detector type that reads its outputs (edge config model.type)")
    labels: list[str]
    input_size: int | None = Field(description="Square input side the model was measured at, when known")
    train_data_hash: str | None = Field(description="fieldline.train_data_hash of a FieldLine export")
    fieldline_native: bool = Field(description="False for a foreign export (no fieldline.* metadata)")
    size_bytes: int
    figures: dict[str, Any] = Field(description="Card figures: map50, map50_95, latency, calibrated thresholds")
    has_card: bool
    uploaded_by: str
    uploaded_ms: int

    @classmethod
    def of(cls, record: ModelRecord) -> ModelOut:
        data = asdict(record)
        data.pop("metadata")
        data["has_card"] = data.pop("card") is not None
        return cls(**data)


class ModelDetailOut(ModelOut):
    metadata: dict[str, str] = Field(description="fieldline.* metadata (without the prefix), or a foreign file's own")
    card: str | None = Field(description="The model card (Markdown), when uploaded with the file")

    @classmethod
    def of(cls, record: ModelRecord) -> ModelDetailOut:
        return cls(**{**ModelOut.of(record).model_dump(), "metadata": record.metadata, "card": record.card})


class ModelUploadOut(BaseModel):
    created: bool = Field(description="False when this exact file was already registered (nothing changed)")
    model: ModelDetailOut


class ModelVersionOut(BaseModel):
    version: str
    files: list[ModelOut] = Field(description="Files of this version, e.g. FP32 and INT8, newest upload first")


class ModelGroupOut(BaseModel):
    name: str
    versions: list[ModelVersionOut] = Field(description="Newest upload first")


def group_models(records: list[ModelRecord]) -> list[ModelGroupOut]:
    groups: dict[str, dict[str, list[ModelOut]]] = {}
    for record in sorted(records, key=lambda r: -r.uploaded_ms):
        groups.setdefault(record.name, {}).setdefault(record.version, []).append(ModelOut.of(record))
    return [ModelGroupOut(name=name, versions=[ModelVersionOut(version=v, files=f) for v, f in versions.items()])
            for name, versions in sorted(groups.items())]


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["snapshot", "restart", "config", "model", "sample"] = Field(
        description="The command (cmd/{name} topic)")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="snapshot: {camera?}; sample: {camera?, note?}; restart: {}; config: {config: whole agent config}; "
                    "model: {sha256: a registered file} or {rollback: true}")
    timeout_s: float | None = Field(
        default=None, gt=0, le=86400,
        description="No reply after this long: timed_out (default snapshot 30, restart 60, config 60, model 600)")
    api_url: str | None = Field(
        default=None, max_length=500, pattern=r"^https?://",
        description="Base URL at which devices reach this API, for model downloads (default: this request's)")


class CommandOut(BaseModel):
    id: str = Field(description="The command's request_id on the wire")
    site: str
    device: str
    name: str
    args: dict[str, Any] = Field(description="As sent, with passwords and the download token redacted")
    state: Literal["pending", "sent", "ok", "error", "timed_out"] = Field(
        description="pending: stored, not yet taken by the broker; sent: broker PUBACK; ok/error: the device "
                    "replied; timed_out: no reply by deadline_ms")
    created_by: str
    created_ms: int
    deadline_ms: int
    sent_ms: int | None
    attempts: int = Field(description="Publishes so far (re-published until answered, also after an API restart)")
    replied_ms: int | None
    reply: dict[str, Any] | None = Field(description="The device's CommandReply: ok, error, result")
    timed_out_ms: int | None = Field(description="Set when it timed out (kept if a late reply came after)")

    @classmethod
    def of(cls, record: CommandRecord) -> CommandOut:
        return cls(**{**asdict(record), "args": redact(record.args)})


class AuditOut(BaseModel):
    id: int
    ts_ms: int
    actor: str = Field(description="User name, 'service' (static token), a device (site/device) or 'api'")
    role: str
    action: str = Field(description="model.upload, command.{name}, command.{name}.result, model.download")
    target_kind: Literal["device", "model", "config"]
    target: str = Field(description="site/device, or the model's sha256")
    result: str = Field(description="ok, error, pending, timed_out")
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> AuditOut:
        return cls(**asdict(record))
