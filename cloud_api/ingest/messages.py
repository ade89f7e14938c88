"""Turn one MQTT message into one typed ingest item, using only ``fieldline.contract`` (no I/O here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pydantic import ValidationError

from fieldline.contract import (
    MAX_EVENT_BYTES,
    Alert,
    CommandReply,
    ContractError,
    DeviceStats,
    DeviceStatus,
    Event,
    Sample,
    Telemetry,
    Topic,
    parse_event,
    parse_payload,
    parse_sample,
    parse_topic,
)

from cloud_api.ingest.climate_adapters import SensorMap

JPEG_MAGIC = b"\xff\xd8\xff"

# Devices publish on a few topics each (events, status, alerts, stats): parse each once, not per message.
# Snapshot topics (one per event id) pass through the bounded cache without crowding it for long.
_parse_topic = lru_cache(maxsize=4096)(parse_topic)


@dataclass(frozen=True)
class EventItem:
    event: Event
    payload: bytes | None = None  # the JSON it was parsed from, stored as received


@dataclass(frozen=True)
class StatusItem:
    status: DeviceStatus


@dataclass(frozen=True)
class AlertItem:
    alert: Alert


@dataclass(frozen=True)
class StatsItem:
    stats: DeviceStats


@dataclass(frozen=True)
class TelemetryItem:
    """Climate readings: one from a FieldLine ``telemetry`` message, or those an adapter read from a sensor."""

    readings: tuple[Telemetry, ...]


@dataclass(frozen=True)
class SnapshotItem:
    site: str
    device: str
    event_id: str
    jpeg: bytes


@dataclass(frozen=True)
class SampleItem:
    """A frame for the datasets (``samples/{id}``), its JPEG decoded and checked against its sha256."""

    sample: Sample
    jpeg: bytes


@dataclass(frozen=True)
class CommandReplyItem:
    """A device's reply on ``cmd/{name}/reply``; the writer matches it to the API's command by request id."""

    site: str
    device: str
    name: str
    reply: CommandReply


@dataclass(frozen=True)
class DeadLetterItem:
    topic: str
    reason: str
    raw: bytes


@dataclass(frozen=True)
class IgnoredItem:
    topic: str
    why: str


IngestItem = (EventItem | StatusItem | AlertItem | StatsItem | SnapshotItem | CommandReplyItem | TelemetryItem
              | SampleItem | DeadLetterItem | IgnoredItem)
Classify = Callable[[str, bytes], IngestItem]  # (topic, payload) -> item


class MessageClassifier:
    """Validate a message against the wire contract and say what to do with it."""

    def __init__(self, snapshot_max_bytes: int, sensors: SensorMap | None = None) -> None:
        self._snapshot_max_bytes = snapshot_max_bytes
        self._sensors = sensors  # foreign climate sensors (Home Assistant, ESPHome, Zigbee2MQTT) by topic

    def classify(self, topic: str, payload: bytes) -> IngestItem:
        try:
            return self._classify(topic, payload)
        except ContractError as exc:
            return DeadLetterItem(topic=topic, reason=str(exc), raw=payload)

    def _classify(self, topic_name: str, payload: bytes) -> IngestItem:
        if self._sensors is not None and self._sensors.get(topic_name) is not None:
            readings = self._sensors.adapt(topic_name, payload, time.time_ns() // 1_000_000)
            if not readings:
                return IgnoredItem(topic=topic_name, why="the sensor reported no value yet")
            return TelemetryItem(tuple(readings))
        topic = _parse_topic(topic_name)
        if topic.kind == "telemetry":
            reading = parse_payload(Telemetry, payload)
            _check_origin(topic, reading.site, reading.device)
            return TelemetryItem((reading,))
        if topic.kind == "events":
            event = _fast_event(payload) or parse_event(payload)
            _check_origin(topic, event.site, event.device)
            return EventItem(event, payload)
        if topic.kind == "status":
            status = parse_payload(DeviceStatus, payload)
            _check_origin(topic, status.site, status.device)
            return StatusItem(status)
        if topic.kind == "alerts":
            alert = parse_payload(Alert, payload)
            _check_origin(topic, alert.site, alert.device)
            return AlertItem(alert)
        if topic.kind == "stats":
            stats = parse_payload(DeviceStats, payload)
            _check_origin(topic, stats.site, stats.device)
            return StatsItem(stats)
        if topic.kind == "snapshots":
            return self._snapshot(topic, payload)
        if topic.kind == "samples":
            sample = parse_sample(payload)
            _check_origin(topic, sample.site, sample.device)
            if sample.id != topic.arg:
                raise ContractError(f"id: payload says {sample.id!r} but the topic is for sample {topic.arg!r}")
            return SampleItem(sample, sample.jpeg())
        if topic.kind == "cmd_reply":
            assert topic.arg is not None
            return CommandReplyItem(site=topic.site, device=topic.device, name=topic.arg,
                                    reply=parse_payload(CommandReply, payload))
        return IgnoredItem(topic=topic_name, why="cmd topics are cloud to edge")

    def _snapshot(self, topic: Topic, payload: bytes) -> SnapshotItem:
        assert topic.arg is not None
        if len(payload) > self._snapshot_max_bytes:
            raise ContractError(f"snapshot is {len(payload)} bytes, the limit is {self._snapshot_max_bytes}")
        if not payload.startswith(JPEG_MAGIC):
            raise ContractError("snapshot is not a JPEG (no FF D8 FF start of image marker)")
        return SnapshotItem(site=topic.site, device=topic.device, event_id=topic.arg, jpeg=payload)


def _fast_event(payload: bytes) -> Event | None:
    """The hot path: pydantic parses and validates the JSON in one pass (about twice as fast as json.loads
    + model_validate). On any problem returns None, and ``parse_event`` produces the usual error message."""
    if len(payload) > MAX_EVENT_BYTES:
        return None
    try:
        return Event.model_validate_json(payload)
    except (ValidationError, ValueError):
        return None


def _check_origin(topic: Topic, site: str, device: str) -> None:
    """A device may only publish about itself: the payload must match the topic."""
    if device != topic.device:
        raise ContractError(f"device: payload says {device!r} but the topic is for {topic.device!r}")
    if site != topic.site:
        raise ContractError(f"site: payload says {site!r} but the topic is for {topic.site!r}")
