"""Plain records the store returns; no database types cross this boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeviceRecord:
    device: str
    site: str
    state: str  # "online" | "offline" | "unknown" (seen only through events so far)
    last_seen_ms: int
    first_seen_ms: int
    boot: int
    agent_version: str
    status_ts_ms: int | None
    model: dict[str, Any] | None
    cameras: list[dict[str, Any]]
    stats: dict[str, Any] | None


@dataclass(frozen=True)
class ShedSummary:
    id: str
    counts: dict[str, int]
    updated_ms: int


@dataclass(frozen=True)
class CountBucket:
    ts_ms: int
    counts: dict[str, int]


@dataclass(frozen=True)
class NewDeadLetter:
    """A payload that failed validation, as handed to the store (raw is truncated there)."""

    topic: str
    reason: str
    raw: bytes


@dataclass(frozen=True)
class DeadLetterRecord:
    id: int
    received_ms: int
    topic: str
    reason: str
    raw: bytes
    raw_size: int


@dataclass(frozen=True)
class EventQuery:
    """Filters for listing events; ``None`` means no filter."""

    device: str | None = None
    zone: str | None = None
    kind: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = 100
