"""A small synchronous MQTT client for tests: connect (see the CONNACK), publish (see the PUBACK), collect messages.

    with MqttProbe(port, "api", "secret") as api:
        api.subscribe("fieldline/v1/#")
        ...
        api.wait_for(lambda msgs: len(msgs) >= 3)
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.mosquitto import MosquittoBroker


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes


class MqttConnectRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"CONNACK refused: {reason}")
        self.reason = reason


class MqttProbe:
    """MQTT 5 client; ``connect()`` raises :class:`MqttConnectRefused` when the broker says no."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 host: str = "127.0.0.1", ca_file: Path | None = None, client_id: str | None = None) -> None:
        self.host, self.port = host, port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._connack: ReasonCode | None = None
        self._acks: dict[int, ReasonCode] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe

    # ------------------------------------------------------------ callbacks

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        with self._cond:
            self._connack = reason
            self._cond.notify_all()

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        with self._cond:
            self.messages.append(Received(message.topic, bytes(message.payload)))
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason, props) -> None:  # noqa: ANN001
        with self._cond:
            self._acks[mid] = reason
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, props) -> None:  # noqa: ANN001
        with self._cond:
            self._subacks[mid] = list(reasons)
            self._cond.notify_all()

    # ------------------------------------------------------------ API

    def _wait(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            return predicate()

    def connect(self, timeout: float = 10.0) -> MqttProbe:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except (ConnectionError, OSError) as exc:  # TLS handshake failures land here
            raise MqttConnectRefused(f"{type(exc).__name__}: {exc}") from exc
        self.client.loop_start()
        self._wait(lambda: self._connack is not None, timeout, "CONNACK")
        assert self._connack is not None
        if self._connack.is_failure:
            self.client.loop_stop()
            raise MqttConnectRefused(str(self._connack))
        return self

    def subscribe(self, topic_filter: str, timeout: float = 5.0) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        acks = self._wait(lambda: self._subacks.get(mid), timeout, f"SUBACK of {topic_filter}")
        return acks  # type: ignore[return-value]

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> ReasonCode:
        """Publish QoS1 and return the PUBACK's reason code (MQTT 5 reports 'Not authorized' there)."""
        info = self.client.publish(topic, payload, qos=1)
        return self._wait(lambda: self._acks.get(info.mid), timeout, f"PUBACK on {topic}")  # type: ignore[return-value]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0,
                 what: str = "messages") -> list[Received]:
        self._wait(lambda: predicate(self.messages), timeout, what)
        with self._cond:
            return list(self.messages)

    def received_on(self, topic: str) -> list[bytes]:
        with self._cond:
            return [m.payload for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttProbe:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


def settle(seconds: float = 0.3) -> None:
    """Give the broker a moment to route a message that must NOT arrive."""
    time.sleep(seconds)


def broker_with_config(render: Callable[[int], str]) -> MosquittoBroker:
    """A (not yet started) :class:`MosquittoBroker` whose config is ``render(port)``.

    The first listener must be on ``port``: ``start()`` waits until it accepts connections.
    """
    broker = MosquittoBroker()
    broker.config_path.write_text(render(broker.port))
    return broker
