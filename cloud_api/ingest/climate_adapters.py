"""Turn the JSON that common sensor stacks publish into FieldLine ``Telemetry`` readings (no I/O here).

Each configured ``ClimateSensor`` names one exact topic, its payload style and the shed it hangs in:

- ``home_assistant``: a bare number (``21.5``, as HA's MQTT statestream and most MQTT sensors publish), HA's
  state object ``{"state": "21.5", "attributes": {"unit_of_measurement": "°F"}}``, or any JSON object whose
  ``value_key`` holds the value (what a ``value_template: "{{ value_json.temp }}"`` would read).
- ``esphome``: ``<node>/sensor/<name>/state`` carries the value as text (``"21.50"``); ``nan`` while the
  sensor has no reading yet, which is skipped, not an error.
- ``zigbee2mqtt``: ``zigbee2mqtt/<friendly name>`` carries one object with every exposed value, e.g.
  ``{"temperature": 21.3, "humidity": 55.2, "battery": 97, "linkquality": 120}``; every known quantity in it
  becomes a reading and the rest is ignored.

These stacks do not time-stamp their states (Zigbee2MQTT only with ``last_seen`` turned on, which is used
when present), so a reading is stamped with the time the API received it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from fieldline.contract import ContractError, Telemetry, format_validation_error

from cloud_api.core.config import ClimateSensor

DEFAULT_UNITS = {"temperature": "°C", "humidity": "%"}
_UNIT_ALIASES = {"°c": "°C", "c": "°C", "degc": "°C", "celsius": "°C", "°f": "°F", "f": "°F", "fahrenheit": "°F",
                 "k": "K", "kelvin": "K", "%": "%", "%rh": "%", "rh": "%"}
_DEVICE_SAFE = re.compile(r"[^a-z0-9_-]+")


class SensorMap:
    """The configured sensors by topic; ``adapt`` turns one of their messages into readings."""

    def __init__(self, sensors: Sequence[ClimateSensor]) -> None:
        self._by_topic: dict[str, ClimateSensor] = {}
        for sensor in sensors:
            if sensor.topic in self._by_topic:
                raise ValueError(f"climate_sensors: topic {sensor.topic!r} is mapped twice")
            self._by_topic[sensor.topic] = sensor

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    def get(self, topic: str) -> ClimateSensor | None:
        return self._by_topic.get(topic)

    def adapt(self, topic: str, payload: bytes, received_ms: int) -> list[Telemetry]:
        """Readings in this message (possibly none); raises ``ContractError`` naming what is wrong."""
        sensor = self._by_topic.get(topic)
        if sensor is None:
            raise ContractError(f"topic {topic!r} is not a configured climate sensor")
        return adapt(sensor, payload, received_ms)


def gateway_name(sensor: ClimateSensor) -> str:
    """A contract-valid device name for a foreign sensor: its stack and topic, lower-cased and cleaned."""
    cleaned = _DEVICE_SAFE.sub("-", f"{sensor.style}-{sensor.topic}".lower()).strip("-_")
    return cleaned[:64] or "sensor"


def adapt(sensor: ClimateSensor, payload: bytes, received_ms: int) -> list[Telemetry]:
    text = _text(payload)
    if sensor.style == "zigbee2mqtt":
        data = _object(text)
        ts_ms = _last_seen(data.get("last_seen"), received_ms)
        values = [(q, data[q], None) for q in ("temperature", "humidity") if data.get(q) is not None]
        if not values:
            raise ContractError("zigbee2mqtt payload has neither temperature nor humidity")
        return [_reading(sensor, q, v, unit, ts_ms) for q, v, unit in values]
    assert sensor.quantity is not None  # validated in ClimateSensor
    value, unit = _single_value(sensor, text)
    if value is None:
        return []  # "unknown" / "unavailable" / nan: the sensor has nothing to say yet
    return [_reading(sensor, sensor.quantity, value, unit, received_ms)]


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ContractError(f"payload is not UTF-8 (byte {exc.start})") from None


def _object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"payload is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ContractError(f"payload must be a JSON object, got {type(data).__name__}")
    return data


_NO_VALUE = {"", "unknown", "unavailable", "nan", "none", "null"}


def _single_value(sensor: ClimateSensor, text: str) -> tuple[Any, str | None]:
    """(value, unit from the payload or None) of a one-value payload; value None when there is none yet."""
    if text.lower() in _NO_VALUE:
        return None, None
    if not text.startswith("{"):
        return text, None
    if sensor.style == "esphome":
        raise ContractError("esphome state payload must be a bare value, got a JSON object")
    data = _object(text)
    if sensor.value_key is not None:
        if sensor.value_key not in data:
            raise ContractError(f"{sensor.value_key}: missing in the payload (value_key of {sensor.topic!r})")
        value = data[sensor.value_key]
    elif "state" in data:
        value = data["state"]
    else:
        raise ContractError("home_assistant JSON payload needs a 'state' key or a configured value_key")
    attributes = data.get("attributes")
    unit = attributes.get("unit_of_measurement") if isinstance(attributes, dict) else None
    if isinstance(value, str) and value.strip().lower() in _NO_VALUE:
        return None, None
    return value, unit if isinstance(unit, str) else None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ContractError(f"{what}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ContractError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ContractError(f"{what}: {value!r} is not a finite number")
    return number


def _unit(raw: str | None, sensor: ClimateSensor, quantity: str) -> str:
    chosen = raw if raw is not None else sensor.unit
    if chosen is None:
        return DEFAULT_UNITS[quantity]
    return _UNIT_ALIASES.get(chosen.strip().lower(), chosen.strip())


def _reading(sensor: ClimateSensor, quantity: str, value: Any, unit: str | None, ts_ms: int) -> Telemetry:
    try:
        return Telemetry(
            site=sensor.site, device=gateway_name(sensor), sensor=sensor.sensor or sensor.topic, shed=sensor.shed,
            quantity=quantity, value=_number(value, quantity), unit=_unit(unit, sensor, quantity), ts_ms=ts_ms,
        )
    except ValidationError as exc:
        raise ContractError(format_validation_error(exc)) from None


def _last_seen(value: Any, received_ms: int) -> int:
    """Zigbee2MQTT's optional ``last_seen``: epoch ms (``last_seen: epoch``) or ISO 8601 (``ISO_8601``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return received_ms
    return received_ms
