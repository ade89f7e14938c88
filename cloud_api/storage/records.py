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
    instance: str | None = None  # install id from the latest status (schema 1.1 agents)


@dataclass(frozen=True)
class SeqRange:
    first: int
    last: int


@dataclass(frozen=True)
class InstanceAudit:
    """One install of a device (None: events of agents older than schema 1.1, which carry no instance)."""

    instance: str | None
    first_seen_ms: int
    last_seen_ms: int
    events: int  # stored events
    first_seq: int | None
    last_seq: int | None
    missing: int  # seqs never received between 1 (or the first, for old agents) and the last
    gaps: list[SeqRange]  # the first 100 ranges of missing seqs
    repeats: int  # deliveries of an id already stored with the same content (QoS1 resends, replays)
    boots: dict[int, tuple[int, int, int]]  # boot -> (first seq, last seq, events)


@dataclass(frozen=True)
class DeviceAudit:
    site: str
    device: str
    installs: list[InstanceAudit]  # oldest first
    reinstalled: bool  # came back with a new instance id (data folder wiped, SD card replaced)
    id_collisions: int  # events of this device stored under a derived id (see sqlite_identity)


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
    site: str | None = None
    zone: str | None = None
    kind: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    limit: int = 100


# ---------------------------------------------------------------- users and tokens


@dataclass(frozen=True)
class UserRecord:
    username: str
    role: str  # "admin" | "operator" | "viewer"
    password_hash: str
    created_ms: int


@dataclass(frozen=True)
class TokenRecord:
    """A login token as stored: only its SHA-256 is kept, never the token itself."""

    token_sha256: str
    username: str
    created_ms: int
    last_used_ms: int | None
    expires_ms: int | None


# ---------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertRecord:
    """One alert in its lifecycle: every alert payload with the same dedup key while it is open."""

    id: int
    ts_ms: int  # ts_ms of the first payload
    last_ts_ms: int  # newest ts_ms of the payloads grouped here
    device: str
    site: str
    zone_kind: str | None
    zone_id: str | None
    zone_row: str | None
    severity: str
    code: str
    message: str
    dedup_key: str
    state: str  # "active" | "acknowledged" | "cleared"
    count: int
    acknowledged_by: str | None
    acknowledged_ms: int | None
    cleared_by: str | None
    cleared_ms: int | None


@dataclass(frozen=True)
class AlertQuery:
    state: str | None = None
    severity: str | None = None
    site: str | None = None
    zone: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class AlertSummary:
    active: int
    acknowledged: int
    by_severity: dict[str, int]  # open (active + acknowledged) alerts per severity


# ---------------------------------------------------------------- shed overview


@dataclass(frozen=True)
class LatestCount:
    """The latest count event of one (shed, site, device, camera, row)."""

    shed: str
    site: str
    device: str
    camera: str
    row: str | None
    event_id: str
    ts_ms: int
    counts: dict[str, int]


# ---------------------------------------------------------------- harvest


@dataclass(frozen=True)
class HarvestDoneRecord:
    date: str
    shed: str
    done_by: str
    done_ms: int


@dataclass(frozen=True)
class HarvestPlanRecord:
    date: str
    created_ms: int
    created_by: str | None
    plan: dict[str, Any]  # the planner's output as JSON-ready data


# ---------------------------------------------------------------- change feed


@dataclass(frozen=True)
class StoreChange:
    """Something committed that live clients care about; emitted after the transaction commits.

    kind "count" / "inspection": ``subject`` is the new ``Event``; "alert": an ``AlertRecord``;
    "device": a ``DeviceRecord`` after a status was applied. ``change`` says what happened
    ("stored", "opened", "repeated", "acknowledged", "cleared", "status").
    """

    kind: str
    change: str
    subject: Any
