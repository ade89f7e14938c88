"""FieldLine wire contract, schema ``fieldline.v1`` (DESIGN.md section 3).

Every payload that crosses MQTT is one of the pydantic models below, and every topic is built or parsed
here: no other module formats a topic string by hand. Unknown fields are ignored within a major version;
an unknown major version is rejected with :class:`ContractError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TOPIC_ROOT = "fieldline/v1"
EVENT_SCHEMA = "fieldline.event/1.1"  # 1.1 added ``instance``; any 1.x is read, a v1 event has instance None
EVENT_MAJOR = "1"
MAX_EVENT_BYTES = 256 * 1024
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
INSTANCE_PATTERN = r"^[0-9a-f]{8,32}$"

TopicKind = Literal["status", "events", "alerts", "stats", "snapshots", "samples", "cmd", "cmd_reply", "telemetry"]
TELEMETRY_SCHEMA = "fieldline.telemetry/1.0"  # added in fieldline.v1 as a minor addition: a new topic suffix
SAMPLE_SCHEMA = "fieldline.sample/1.0"  # added in fieldline.v1 as a minor addition: topic suffix samples/{id}
MAX_SAMPLE_BYTES = 768 * 1024  # a Sample payload (JSON with the base64 JPEG) is at most this big
SAMPLE_REASONS = ("uncertain_score", "count_flicker", "label_switch", "random", "on_demand")


def _check_schema(value: str, name: str, major: str) -> str:
    """``value`` if it is ``{name}/{major}.x`` (any minor); otherwise a ValueError naming what this build reads."""
    got_name, _, version = value.partition("/")
    got_major, _, minor = version.partition(".")
    if got_name != name or got_major != major or (minor and not minor.isdigit()):
        raise ValueError(f"unsupported schema {value!r}, this build reads {name}/{major}.x")
    return value


class ContractError(ValueError):
    """A payload or topic that does not follow the wire contract; the message names the field."""


class _Payload(BaseModel):
    """Base for wire payloads: unknown fields are ignored (forward compatible within a major)."""

    model_config = ConfigDict(extra="ignore", frozen=False)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode("utf-8")


class ModelRef(_Payload):
    name: str = Field(description="Model name, e.g. tomato-ripeness")
    version: str = Field(description="Model version string")
    sha256: str = Field(description="SHA-256 of the ONNX file, hex")


class Zone(_Payload):
    kind: Literal["shed", "line"] = Field(description="Greenhouse shed or factory line")
    id: str = Field(min_length=1, max_length=64, description="Zone id, e.g. shed-07 or line-2")
    row: str | None = Field(default=None, max_length=64, description="Row inside a shed, e.g. r3")


# Constraints pydantic checks natively (no Python call per value: events arrive by the thousand per second)
UnitCoordinate = Annotated[float, Field(ge=-1e-6, le=1 + 1e-6)]
NonNegativeCount = Annotated[int, Field(ge=0)]


class Detection(_Payload):
    label: str = Field(min_length=1, description="Class label from the model card")
    score: float = Field(ge=0.0, le=1.0, description="Confidence 0..1")
    box: tuple[UnitCoordinate, UnitCoordinate, UnitCoordinate, UnitCoordinate] = Field(
        description="x1, y1, x2, y2 normalised to 0..1, x1 <= x2 and y1 <= y2")
    track: int | None = Field(default=None, description="Tracker id, if tracked")

    def box_order_error(self) -> str | None:
        x1, y1, x2, y2 = self.box
        return "must be x1 <= x2 and y1 <= y2" if x2 < x1 or y2 < y1 else None


class Event(_Payload):
    schema_: str = Field(default=EVENT_SCHEMA, alias="schema", description="Payload schema, major.minor")
    id: str = Field(min_length=1, max_length=200, description="Globally unique id, the idempotency key")
    device: str = Field(pattern=NAME_PATTERN, description="Device name, unique within its site only")
    site: str = Field(pattern=NAME_PATTERN, description="Site id")
    instance: str | None = Field(
        default=None, pattern=INSTANCE_PATTERN,
        description="Random id made at the agent's first start and kept with its spool: a wiped data folder or a "
                    "new SD card gets a new one (schema 1.1; None in 1.0 events)")
    camera: str = Field(min_length=1, max_length=64, description="Camera name on the device")
    boot: int = Field(ge=0, description="Agent boot counter, persisted")
    seq: int = Field(ge=0, description="Per-device event sequence, persisted across restarts")
    ts_ms: int = Field(ge=0, description="Capture time, UTC epoch milliseconds")
    zone: Zone
    kind: Literal["count", "inspection", "track"]
    model: ModelRef
    detections: list[Detection] = Field(default_factory=list)
    counts: dict[str, NonNegativeCount] = Field(default_factory=dict, description="Objects per label in the zone")
    verdict: Literal["pass", "reject"] | None = None
    track_state: Literal["new", "update", "end"] | None = None
    historical: bool = Field(default=False, description="True when replayed from the spool")
    snapshot: str | None = Field(default=None, description="Event id of a snapshot message")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _known_major(cls, value: str) -> str:
        return _check_schema(value, "fieldline.event", EVENT_MAJOR)

    @model_validator(mode="after")
    def _kind_fields(self) -> Event:
        for i, detection in enumerate(self.detections):  # one check per event, not a validator per box
            problem = detection.box_order_error()
            if problem:
                raise ValueError(f"detections.{i}.box: {problem}")
        if self.kind == "inspection" and self.verdict is None:
            raise ValueError("verdict is required when kind is 'inspection'")
        if self.kind == "track" and self.track_state is None:
            raise ValueError("track_state is required when kind is 'track'")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


def new_instance_id() -> str:
    """A random per-install id (64 bits, hex): unique without coordination between devices or sites."""
    return secrets.token_hex(8)


def message_id(device: str, instance: str, boot: int, suffix: str | int) -> str:
    """Id of an event (``suffix`` = seq), alert (``a{n}``) or snapshot (``snap{n}``) of one agent install.

    The device name alone repeats across sites and a wiped data folder restarts ``boot``; the instance id
    makes the id unique anyway.
    """
    return f"{device}-{instance}-{boot}-{suffix}"


class CameraInfo(_Payload):
    name: str
    zone: Zone


class DeviceStatus(_Payload):
    state: Literal["online", "offline"]
    device: str = Field(pattern=NAME_PATTERN)
    site: str = Field(pattern=NAME_PATTERN)
    boot: int = Field(default=0, ge=0)
    instance: str | None = Field(default=None, pattern=INSTANCE_PATTERN, description="As in Event")
    ts_ms: int = Field(ge=0)
    agent_version: str = ""
    model: ModelRef | None = None
    cameras: list[CameraInfo] = Field(default_factory=list)
    config_hash: str = ""


class Alert(_Payload):
    id: str = Field(min_length=1, max_length=200)
    ts_ms: int = Field(ge=0)
    device: str = Field(pattern=NAME_PATTERN)
    site: str = Field(pattern=NAME_PATTERN)
    zone: Zone | None = None
    severity: Literal["info", "warning", "critical"]
    code: str = Field(min_length=1, max_length=64, description="e.g. camera_offline, defect_rate_high, overripe")
    message: str = Field(max_length=2000)
    dedup_key: str = Field(min_length=1, max_length=200)


class LatencyMs(_Payload):
    p50: float = Field(ge=0)
    p95: float = Field(ge=0)


class DeviceStats(_Payload):
    device: str = Field(pattern=NAME_PATTERN)
    site: str = Field(pattern=NAME_PATTERN)
    ts_ms: int = Field(ge=0)
    fps: float = Field(ge=0)
    latency_ms: LatencyMs
    spool_depth: int = Field(ge=0)
    dropped: int = Field(ge=0)
    cpu: float = Field(ge=0, description="CPU use of the agent process, percent")
    samples: dict[str, NonNegativeCount] | None = Field(
        default=None, description="Frames sent for the datasets since start, by sampling reason (None: none yet)")


class Command(_Payload):
    request_id: str = Field(min_length=1, max_length=200)
    name: Literal["config", "model", "snapshot", "restart", "sample"]
    ts_ms: int = Field(ge=0)
    args: dict[str, Any] = Field(default_factory=dict)


class CommandReply(_Payload):
    request_id: str = Field(min_length=1, max_length=200)
    ok: bool
    error: str | None = None
    ts_ms: int = Field(ge=0)
    result: dict[str, Any] | None = Field(default=None, description="Command-specific details, e.g. snapshot id")


TELEMETRY_UNITS: dict[str, tuple[str, ...]] = {
    "temperature": ("°C", "°F", "K"),
    "humidity": ("%",),
}


class Telemetry(_Payload):
    """One climate reading of one sensor in one shed (topic suffix ``telemetry``).

    Published by a FieldLine device itself, or made by the cloud's adapters from the JSON of common sensor
    stacks (Home Assistant, ESPHome, Zigbee2MQTT). ``device`` is the publisher (a gateway may carry many
    sensors); ``sensor`` names the probe. Readings are keyed by (site, sensor, quantity, ts_ms): a repeat is a
    duplicate.
    """

    schema_: str = Field(default=TELEMETRY_SCHEMA, alias="schema", description="Payload schema, major.minor")
    site: str = Field(pattern=NAME_PATTERN, description="Site id")
    device: str = Field(pattern=NAME_PATTERN, description="Publishing device (gateway) name, unique per site")
    sensor: str = Field(min_length=1, max_length=128, description="Sensor id, unique within the site")
    shed: str = Field(min_length=1, max_length=64, description="Shed the sensor is in, e.g. shed-07")
    quantity: Literal["temperature", "humidity"] = Field(description="What is measured")
    value: float = Field(allow_inf_nan=False, description="The reading, in ``unit``")
    unit: str = Field(description="°C, °F or K for temperature; % for relative humidity")
    ts_ms: int = Field(ge=0, description="Measurement time, UTC epoch milliseconds")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _known_major(cls, value: str) -> str:
        return _check_schema(value, "fieldline.telemetry", "1")

    @model_validator(mode="after")
    def _unit_fits(self) -> Telemetry:
        allowed = TELEMETRY_UNITS[self.quantity]
        if self.unit not in allowed:
            raise ValueError(f"unit: {self.unit!r} is not a unit of {self.quantity} (one of {', '.join(allowed)})")
        return self

    def canonical_value(self) -> float:
        """The value in °C (temperature) or % (humidity): what the store keeps."""
        if self.unit == "°F":
            return (self.value - 32.0) * 5.0 / 9.0
        if self.unit == "K":
            return self.value - 273.15
        return self.value

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


SampleReason = Literal["uncertain_score", "count_flicker", "label_switch", "random", "on_demand"]


class Sample(_Payload):
    """One camera frame the edge thinks worth labelling, with the model's predictions (topic ``samples/{id}``).

    Sent by the sampling policy (``edge_agent.sampling``) or on demand (command ``sample``); the cloud stores
    it as a frame of a dataset (``dataset``, else the dataset named after ``model.name``).
    """

    schema_: str = Field(default=SAMPLE_SCHEMA, alias="schema", description="Payload schema, major.minor")
    id: str = Field(min_length=1, max_length=200, description="Unique like event ids (message_id form)")
    device: str = Field(pattern=NAME_PATTERN)
    site: str = Field(pattern=NAME_PATTERN)
    instance: str | None = Field(default=None, pattern=INSTANCE_PATTERN, description="As in Event")
    camera: str = Field(min_length=1, max_length=64)
    zone: Zone
    ts_ms: int = Field(ge=0, description="Capture time, UTC epoch milliseconds")
    model: ModelRef
    model_labels: list[str] = Field(default_factory=list, description="All labels of the model, in class-id order")
    dataset: str | None = Field(default=None, pattern=NAME_PATTERN,
                                description="Dataset the camera config names; None: the one named after the model")
    reason: SampleReason
    note: str | None = Field(default=None, max_length=500, description="Free text, e.g. who asked and why")
    request_id: str | None = Field(default=None, max_length=200, description="The on-demand request, if any")
    detections: list[Detection] = Field(default_factory=list, description="The model's predictions on this frame")
    width: int = Field(ge=1, le=16384, description="Image width, pixels")
    height: int = Field(ge=1, le=16384, description="Image height, pixels")
    image_b64: str = Field(min_length=4, description="The frame as JPEG, base64 (no boxes drawn)")
    image_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the JPEG bytes, hex")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _known_major(cls, value: str) -> str:
        return _check_schema(value, "fieldline.sample", "1")

    @model_validator(mode="after")
    def _boxes_ordered(self) -> Sample:
        for i, detection in enumerate(self.detections):
            problem = detection.box_order_error()
            if problem:
                raise ValueError(f"detections.{i}.box: {problem}")
        return self

    def jpeg(self) -> bytes:
        """The decoded image; raises :class:`ContractError` when it is not base64 of a JPEG with that sha256."""
        try:
            data = base64.b64decode(self.image_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ContractError("image_b64: not valid base64") from None
        if not data.startswith(b"\xff\xd8\xff"):
            raise ContractError("image_b64: not a JPEG (no FF D8 FF start of image marker)")
        if hashlib.sha256(data).hexdigest() != self.image_sha256:
            raise ContractError("image_sha256: does not match the SHA-256 of the decoded image")
        return data

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


def build_sample(*, jpeg: bytes, **fields: Any) -> Sample:
    """A :class:`Sample` around ``jpeg`` (base64 and sha256 filled in)."""
    return Sample(image_b64=base64.b64encode(jpeg).decode("ascii"), image_sha256=hashlib.sha256(jpeg).hexdigest(),
                  **fields)


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "event": Event,
    "status": DeviceStatus,
    "alert": Alert,
    "stats": DeviceStats,
    "command": Command,
    "command_reply": CommandReply,
    "telemetry": Telemetry,
    "sample": Sample,
}


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path, e.g. ``zone.kind: Input should be 'shed' or 'line'``."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<root>"
        lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def parse_payload(model: type[_Payload], raw: bytes | str, max_bytes: int = MAX_EVENT_BYTES) -> Any:
    """Decode and validate one payload; raise :class:`ContractError` naming the field on failure."""
    if isinstance(raw, bytes):
        if len(raw) > max_bytes:
            raise ContractError(f"payload is {len(raw)} bytes, the limit is {max_bytes}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(f"payload is not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # e.g. "[[[[...]]]]" thousands deep: json's recursive decoder gives up
        raise ContractError("payload is not a FieldLine payload: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise ContractError(f"payload must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(format_validation_error(exc)) from None


def parse_event(raw: bytes | str) -> Event:
    return parse_payload(Event, raw)


def parse_sample(raw: bytes | str) -> Sample:
    """A Sample (up to ``MAX_SAMPLE_BYTES``); the image itself is checked by :meth:`Sample.jpeg`."""
    return parse_payload(Sample, raw, MAX_SAMPLE_BYTES)


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every wire payload, keyed by payload name."""
    return {name: model.model_json_schema(by_alias=True) for name, model in PAYLOAD_MODELS.items()}


# ---------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    """A parsed FieldLine topic."""

    site: str
    device: str
    kind: TopicKind
    arg: str | None = None  # event id for snapshots, sample id for samples, command name for cmd / cmd_reply


def _check_name(value: str, what: str) -> str:
    if not _NAME_RE.match(value):
        raise ContractError(f"{what} {value!r} must match {NAME_PATTERN}")
    return value


def device_root(site: str, device: str) -> str:
    return f"{TOPIC_ROOT}/{_check_name(site, 'site')}/{_check_name(device, 'device')}"


def status_topic(site: str, device: str) -> str:
    return f"{device_root(site, device)}/status"


def events_topic(site: str, device: str) -> str:
    return f"{device_root(site, device)}/events"


def alerts_topic(site: str, device: str) -> str:
    return f"{device_root(site, device)}/alerts"


def stats_topic(site: str, device: str) -> str:
    return f"{device_root(site, device)}/stats"


def snapshot_topic(site: str, device: str, event_id: str) -> str:
    if not event_id or "/" in event_id or "+" in event_id or "#" in event_id:
        raise ContractError(f"snapshot event id {event_id!r} must be non-empty without / + #")
    return f"{device_root(site, device)}/snapshots/{event_id}"


def sample_topic(site: str, device: str, sample_id: str) -> str:
    """A ``Sample`` (frame for the datasets), QoS 1, not retained."""
    if not sample_id or "/" in sample_id or "+" in sample_id or "#" in sample_id:
        raise ContractError(f"sample id {sample_id!r} must be non-empty without / + #")
    return f"{device_root(site, device)}/samples/{sample_id}"


def telemetry_topic(site: str, device: str) -> str:
    """Climate readings (``Telemetry``) a device publishes, QoS 1, not retained."""
    return f"{device_root(site, device)}/telemetry"


def command_topic(site: str, device: str, name: str) -> str:
    return f"{device_root(site, device)}/cmd/{name}"


def command_reply_topic(site: str, device: str, name: str) -> str:
    return f"{device_root(site, device)}/cmd/{name}/reply"


HA_STATE_ROOT = "fieldline-ha"


def home_assistant_state_topic(site: str, device: str, camera: str) -> str:
    """Retained per-camera counts for Home Assistant; outside ``fieldline/v1`` so the cloud ingest ignores it."""
    return f"{HA_STATE_ROOT}/{_check_name(site, 'site')}/{_check_name(device, 'device')}/{camera}/state"


def home_assistant_config_topic(prefix: str, object_id: str) -> str:
    return f"{prefix}/sensor/{object_id}/config"


def subscription(site: str = "+", device: str = "+", shared_group: str | None = None) -> str:
    """Wildcard subscription for everything devices publish, optionally as an MQTT 5 shared subscription."""
    topic = f"{TOPIC_ROOT}/{site}/{device}/#"
    return f"$share/{shared_group}/{topic}" if shared_group else topic


def parse_topic(topic: str) -> Topic:
    """Parse a concrete topic; raise :class:`ContractError` when it is not a FieldLine topic."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ContractError(f"topic {topic!r} is not under {TOPIC_ROOT}/{{site}}/{{device}}/")
    site, device, rest = _check_name(parts[2], "site"), _check_name(parts[3], "device"), parts[4:]
    if len(rest) == 1 and rest[0] in ("status", "events", "alerts", "stats", "telemetry"):
        return Topic(site, device, rest[0])  # type: ignore[arg-type]
    if len(rest) == 2 and rest[0] == "snapshots" and rest[1]:
        return Topic(site, device, "snapshots", rest[1])
    if len(rest) == 2 and rest[0] == "samples" and rest[1]:
        return Topic(site, device, "samples", rest[1])
    if len(rest) == 2 and rest[0] == "cmd" and rest[1]:
        return Topic(site, device, "cmd", rest[1])
    if len(rest) == 3 and rest[0] == "cmd" and rest[2] == "reply":
        return Topic(site, device, "cmd_reply", rest[1])
    raise ContractError(f"topic {topic!r} has an unknown suffix {'/'.join(rest)!r}")
