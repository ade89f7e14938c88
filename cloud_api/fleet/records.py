"""Plain records of the fleet tables (no I/O): registered models, device commands, audit entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CommandState = Literal["pending", "sent", "ok", "error", "timed_out"]
COMMAND_STATES: tuple[str, ...] = ("pending", "sent", "ok", "error", "timed_out")
UNANSWERED_STATES = ("pending", "sent")
CommandName = Literal["config", "model", "snapshot", "restart", "sample"]


@dataclass(frozen=True)
class ModelRecord:
    """One ONNX file in the registry; ``sha256`` is its identity, (name, version) is unique too."""

    sha256: str
    name: str
    version: str
    decoder: str
    labels: list[str]
    input_size: int | None
    train_data_hash: str | None
    fieldline_native: bool  # False: a foreign export, decoder given at upload
    size_bytes: int
    metadata: dict[str, str]  # every fieldline.* key, without the prefix
    card: str | None  # the model card (Markdown), when uploaded with the file
    figures: dict[str, Any]  # headline figures of the card: mAP, latency, calibrated thresholds
    uploaded_by: str
    uploaded_ms: int


@dataclass(frozen=True)
class CommandRecord:
    id: str  # the request_id on the wire
    site: str
    device: str
    name: str
    args: dict[str, Any]
    state: str
    created_by: str
    created_ms: int
    deadline_ms: int  # no reply by then: timed_out
    sent_ms: int | None = None
    attempts: int = 0  # publishes (1 + re-publishes after API restarts or broker losses)
    replied_ms: int | None = None
    reply: dict[str, Any] | None = None  # the CommandReply as received
    timed_out_ms: int | None = None  # kept when a late reply arrives after the time-out


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts_ms: int
    actor: str
    role: str
    action: str  # e.g. model.upload, command.create, command.reply
    target_kind: str  # device | model
    target: str  # "site/device" or the model's sha256
    result: str  # ok | error | pending | timed_out | refused
    detail: dict[str, Any] = field(default_factory=dict)
