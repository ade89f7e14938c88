"""Response models of the REST API (they make the OpenAPI document accurate)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fieldline.contract import CameraInfo, DeviceStats, ModelRef, Zone


class IngestCountersOut(BaseModel):
    received: int = Field(description="Messages delivered by the broker")
    stored: int = Field(description="Messages persisted")
    duplicates: int = Field(description="Events or alerts whose id was already stored (events: same content)")
    id_collisions: int = Field(default=0, description=(
        "Events whose id was already stored with other content: stored under a derived id and alerted "
        "(included in stored)"))
    dead_letters: int = Field(description="Messages that failed validation")
    ignored: int = Field(description="Messages not meant for the cloud, or stale statuses")
    store_errors: int = Field(description="Messages lost to database errors")
    queue_depth: int = Field(description="Messages received but not yet written")
    last_ingest_ms: int | None = Field(description="Receive time of the last message persisted")


class MqttHealthOut(BaseModel):
    enabled: bool
    connected: bool
    topic_filter: str | None


class LiveCountersOut(BaseModel):
    subscribers: int = Field(description="Connected WebSocket clients")
    published: int = Field(description="Live messages published")
    dropped: int = Field(description="Messages dropped because a client lagged (oldest first)")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    db_ok: bool
    mqtt: MqttHealthOut
    ingest: IngestCountersOut | None
    live: LiveCountersOut | None = Field(default=None, description="WebSocket hub counters")


class DeviceOut(BaseModel):
    device: str = Field(description="Device name, unique within its site: a device is (site, device)")
    site: str
    state: Literal["online", "offline", "unknown"] = Field(
        description="From the device's retained status / LWT; unknown until a status arrives"
    )
    last_seen_ms: int = Field(description="When the cloud last received anything from the device")
    first_seen_ms: int
    boot: int
    agent_version: str
    status_ts_ms: int | None = Field(description="ts_ms of the last status applied")
    model: ModelRef | None
    cameras: list[CameraInfo]
    stats: DeviceStats | None = Field(description="The last stats message, if any")
    instance: str | None = Field(default=None, description="Install id from the last status (agents of schema 1.1)")


class SeqRangeOut(BaseModel):
    first: int
    last: int


class InstallAuditOut(BaseModel):
    instance: str | None = Field(description="Install id; null for events of agents older than schema 1.1")
    first_seen_ms: int
    last_seen_ms: int
    events: int = Field(description="Events stored from this install")
    first_seq: int | None
    last_seq: int | None
    missing: int = Field(description="Seqs never received up to the last one (an install starts at 1): lost events")
    gaps: list[SeqRangeOut] = Field(description="The first 100 ranges of missing seqs")
    repeats: int = Field(description="Deliveries of an event already stored with the same content (resends, replays)")
    boots: dict[int, tuple[int, int, int]] = Field(description="Per boot: first seq, last seq, events stored")


class DeviceAuditOut(BaseModel):
    site: str
    device: str
    installs: list[InstallAuditOut] = Field(description="Oldest first; seq restarts at 1 with each install")
    reinstalled: bool = Field(description="The device came back with a new instance id (data folder wiped, new SD card)")
    id_collisions: int = Field(description="Events of this device stored under a derived id after an id collision")


CameraState = Literal["online", "offline", "unknown"]


class ShedOut(BaseModel):
    id: str
    name: str = Field(description="Display name: Settings.zone_names, else the id")
    counts: dict[str, int] = Field(description="Sum over (device, camera, row) of the latest count event")
    updated_ms: int = Field(description="ts_ms of the newest of those count events")
    site: str | None = Field(description="Site of the device behind the newest count")
    pick_ready: int = Field(description="Sum of the counts of the pick-ready labels (Settings.pick_ready_labels, "
                                        "or the shed's own list in Settings.pick_ready_labels_by_shed)")
    trend: int = Field(description="pick_ready now minus pick_ready 24 h ago; 0 when unknown")
    camera_state: CameraState = Field(
        description="offline if any camera of the shed is offline, online if all are online, else unknown"
    )
    open_alerts: int = Field(description="Active + acknowledged alerts whose zone is this shed")


class ShedRowOut(BaseModel):
    row: str | None = Field(description="Row id, null for counts without a row")
    counts: dict[str, int]


class ShedCameraOut(BaseModel):
    site: str
    device: str
    camera: str
    state: CameraState = Field(description="State of the camera's device")
    last_seen_ms: int | None = Field(description="When the cloud last heard from the device")


class ShedDetailOut(ShedOut):
    rows: list[ShedRowOut] = Field(description="Latest counts per row")
    cameras: list[ShedCameraOut] = Field(description="Cameras that count in the shed or are mapped to it by status")
    latest_snapshot: str | None = Field(description="Event id of the newest snapshot (GET /snapshots/{id}), or null")


class CountPointOut(BaseModel):
    ts_ms: int = Field(description="Start of the bucket: from_ms + i * bucket_ms")
    counts: dict[str, int]


class ShedCountsOut(BaseModel):
    shed: str
    from_ms: int
    to_ms: int
    bucket_ms: int
    points: list[CountPointOut] = Field(description="Buckets that have data, oldest first")


class DeadLetterOut(BaseModel):
    id: int
    received_ms: int
    topic: str
    reason: str = Field(description="Why validation failed, naming the field")
    raw_size: int = Field(description="Size of the original payload in bytes")
    raw_truncated: bool
    raw_base64: str = Field(description="The stored (possibly truncated) payload, base64")
    raw_text: str = Field(description="The stored payload as UTF-8 with undecodable bytes escaped")


# ---------------------------------------------------------------- auth


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>' (on the WebSocket: the header or a first message {\"type\": \"auth\", \"token\": ...})")
    token_type: Literal["bearer"] = "bearer"
    username: str
    role: Literal["admin", "operator", "viewer"]
    expires_ms: int | None = Field(description="Expiry, epoch ms; null if the token does not expire")


class MeOut(BaseModel):
    username: str = Field(description="User name; 'service' for the static tokens of Settings.api_tokens")
    role: Literal["admin", "operator", "viewer"]
    kind: Literal["user", "service"] = Field(description="A logged-in user or a static service token")


class UserIn(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    password: str = Field(min_length=8, max_length=1024)
    role: Literal["admin", "operator", "viewer"]


class UserOut(BaseModel):
    username: str
    role: Literal["admin", "operator", "viewer"]
    created_ms: int


# ---------------------------------------------------------------- alerts


class AlertOut(BaseModel):
    id: str = Field(description="Row id of the alert lifecycle (decimal string); one per open dedup key")
    ts_ms: int = Field(description="ts_ms of the first alert payload grouped here")
    last_ts_ms: int = Field(description="Newest ts_ms of the payloads grouped here")
    device: str
    site: str
    zone: Zone | None = Field(description="Zone of the first payload, as on the wire")
    zone_id: str | None = Field(description="zone.id, for convenience")
    severity: Literal["info", "warning", "critical"] = Field(description="Highest severity seen")
    code: str
    message: str = Field(description="Message of the newest payload")
    dedup_key: str
    state: Literal["active", "acknowledged", "cleared"]
    count: int = Field(description="Payloads grouped into this alert")
    acknowledged_by: str | None
    acknowledged_ms: int | None
    cleared_by: str | None
    cleared_ms: int | None


class AlertSummaryOut(BaseModel):
    active: int
    acknowledged: int
    by_severity: dict[str, int] = Field(description="Open (active + acknowledged) alerts per severity")


# ---------------------------------------------------------------- harvest


class HarvestPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operators: list[str] | None = Field(default=None, min_length=1, max_length=20,
                                        description="Operator names; default Settings.harvest_operators")
    # bounded: a rate like 5e-324 made the plan's minutes infinite, serialised as null against the schema
    pick_rate_per_min: float | None = Field(default=None, ge=0.1, le=10_000,
                                            description="Fruits per minute per operator")
    walk_speed_m_per_min: float | None = Field(default=None, ge=0.1, le=100_000,
                                               description="Walking speed, metres per minute")

    @field_validator("operators")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and (len(set(names)) != len(names) or not all(n.strip() for n in names)):
            raise ValueError("operator names must be distinct and non-empty")
        return names


class OperatorPlanOut(BaseModel):
    name: str
    sheds: list[str] = Field(description="Shed ids in walkway order")
    fruits: int
    pick_minutes: float
    walk_minutes: float = Field(description="From the start of the walkway to the farthest shed and back")
    total_minutes: float


class HarvestPlanOut(BaseModel):
    date: str = Field(description="YYYY-MM-DD in Settings.timezone")
    created_ms: int
    created_by: str | None
    operators: list[OperatorPlanOut]
    makespan_minutes: float = Field(description="Time until every operator is done")
    contiguous: bool = Field(description="True when each operator has one stretch of the walkway")
    explanation: list[str]
    done: list[str] = Field(description="Sheds marked done on that date (now, not when planned)")
    pick_rate_per_min: float
    walk_speed_m_per_min: float


class HarvestDoneOut(BaseModel):
    date: str
    shed: str
    done: bool
    done_by: str | None
    done_ms: int | None
