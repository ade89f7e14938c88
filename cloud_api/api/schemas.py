"""Response models of the REST API (they make the OpenAPI document accurate)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from fieldline.contract import CameraInfo, DeviceStats, ModelRef


class IngestCountersOut(BaseModel):
    received: int = Field(description="Messages delivered by the broker")
    stored: int = Field(description="Messages persisted")
    duplicates: int = Field(description="Events or alerts whose id was already stored")
    dead_letters: int = Field(description="Messages that failed validation")
    ignored: int = Field(description="Messages not meant for the cloud, or stale statuses")
    store_errors: int = Field(description="Messages lost to database errors")
    queue_depth: int = Field(description="Messages received but not yet written")
    last_ingest_ms: int | None = Field(description="Receive time of the last message persisted")


class MqttHealthOut(BaseModel):
    enabled: bool
    connected: bool
    topic_filter: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    db_ok: bool
    mqtt: MqttHealthOut
    ingest: IngestCountersOut | None


class DeviceOut(BaseModel):
    device: str
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


class ShedOut(BaseModel):
    id: str
    name: str
    counts: dict[str, int] = Field(description="Sum over (device, camera, row) of the latest count event")
    updated_ms: int = Field(description="ts_ms of the newest of those count events")


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
