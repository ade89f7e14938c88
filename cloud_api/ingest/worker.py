"""The MQTT ingest worker: a paho-mqtt (>= 2) subscriber feeding the batch writer, both on one thread.

The paho network thread reconnects with exponential backoff whenever the broker goes away; the API keeps
serving meanwhile. After each pass that read messages it writes them (``BatchWriter.write_held``), and
acknowledges them (PUBACK) only after they are committed to the store.

The same client also sends the API's commands to devices (``publish``): one broker connection and one
login per API worker, with the ``api`` user's ACL (write ``fieldline/v1/+/+/cmd/#``).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from fieldline.contract import subscription

from cloud_api.core.config import Settings
from cloud_api.ingest.counters import IngestCounters, IngestCountersSnapshot
from cloud_api.ingest.climate_adapters import SensorMap
from cloud_api.ingest.messages import MessageClassifier
from cloud_api.ingest.mqtt_client import IngestClient
from cloud_api.ingest.writer import BatchWriter
from cloud_api.services.climate import SilenceWatch, ThresholdAlerts, limits_from, store_clearer
from cloud_api.storage.base import Store

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: keep the session (and queued QoS1 messages) for a week


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class IngestWorker:
    """Subscribe to everything devices publish and store it; ``start()`` / ``stop()``."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._counters = IngestCounters()
        self._sensors = SensorMap(settings.climate_sensors)  # foreign climate sensors, subscribed by topic
        self._classifier = MessageClassifier(snapshot_max_bytes=settings.snapshot_max_bytes, sensors=self._sensors)
        thresholds = ThresholdAlerts(limits_from(settings), clear=store_clearer(store))
        self._writer = BatchWriter(store, self._counters, self._classifier.classify,
                                   batch_max=settings.ingest_batch_max, telemetry_alerts=thresholds.check)
        self.silence = SilenceWatch(store.climate_sensors, store.write_alerts,
                                    int(settings.climate_silent_after_s * 1000), settings.climate_check_interval_s,
                                    on_written=thresholds.note_opened)
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        # bumped on every connection; acks from an older connection are dropped (all on paho's thread, except
        # the last write in ``stop`` once that thread has ended)
        self._generation = 0

    @property
    def topic_filter(self) -> str:
        return subscription(shared_group=self._settings.shared_group)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the MQTT network thread (which also writes); returns at once (it connects in the background)."""
        if self._client is not None:
            return
        client = self._build_client()
        self._client = client
        s = self._settings
        properties = None
        if s.mqtt_protocol == "5" and s.mqtt_persistent_session:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        clean_start: Any = (not s.mqtt_persistent_session) if s.mqtt_protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s,
                             clean_start=clean_start, properties=properties)
        client.loop_start()
        self.silence.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect, then write whatever was already received."""
        client, self._client = self._client, None
        self.silence.stop()
        if client is not None:
            self._writer.wait_idle(timeout)  # so the acks of what is already held still go out
            client.disconnect()
            client.loop_stop()
            self._writer.write_held()  # anything read in the very last pass (not acknowledged: redelivered)
        self._connected.clear()

    def _build_client(self) -> mqtt.Client:
        s = self._settings
        v5 = s.mqtt_protocol == "5"
        client = IngestClient(
            CallbackAPIVersion.VERSION2,
            client_id=s.mqtt_client_id,
            clean_session=None if v5 else not s.mqtt_persistent_session,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        if s.mqtt_username is not None:
            client.username_pw_set(s.mqtt_username, s.mqtt_password)
        if s.mqtt_tls_ca_file is not None:  # server certificate and host name are verified
            client.tls_set(ca_certs=str(s.mqtt_tls_ca_file),
                           certfile=str(s.mqtt_tls_cert_file) if s.mqtt_tls_cert_file else None,
                           keyfile=str(s.mqtt_tls_key_file) if s.mqtt_tls_key_file else None)
        client.reconnect_delay_set(s.mqtt_reconnect_min_s, s.mqtt_reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.after_read = self._writer.write_held
        return client

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> bool:
        """Publish at QoS 1 and wait for the broker's PUBACK; False when not connected or no PUBACK in time
        (the caller keeps the message and tries again: the device side is idempotent by request id)."""
        client = self._client
        if client is None or not self._connected.is_set():
            return False
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):  # the connection went while waiting
            return False
        return info.is_published()

    # ------------------------------------------------------------ state for tests and /health

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def counters(self) -> IngestCountersSnapshot:
        return self._counters.snapshot()

    @property
    def queue_depth(self) -> int:
        return self._writer.queue_depth

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once everything received so far is written to the store."""
        return self._writer.wait_idle(timeout)

    def flush(self, timeout: float = 5.0) -> None:
        """Like ``wait_idle`` but raises ``TimeoutError`` when the writer does not catch up."""
        if not self.wait_idle(timeout):
            raise TimeoutError(f"ingest writer still has {self.queue_depth} messages after {timeout} s")

    # ------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connect to %s:%s refused: %s", self._settings.mqtt_host, self._settings.mqtt_port, reason)
            return
        self._generation += 1
        group = self._settings.shared_group  # several API workers: each sensor message goes to one of them
        sensor_filters = [(f"$share/{group}/{t}" if group else t, 1) for t in self._sensors.topics]
        client.subscribe([(self.topic_filter, 1), *sensor_filters])
        log.info("MQTT connected to %s:%s, subscribing %s",
                 self._settings.mqtt_host, self._settings.mqtt_port, self.topic_filter)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("MQTT subscription %s refused: %s", self.topic_filter, reasons)
            return
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self._connected.clear()
        if self._client is not None:
            log.warning("MQTT connection lost (%s); reconnecting with backoff", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = now_ms()
        self._counters.add_received()
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "backslashreplace")  # noqa: SLF001 - keep the bad topic visible
        ack = None if message.qos == 0 else partial(self._ack, client, self._generation, message.mid, message.qos)
        self._writer.hold_raw(topic, bytes(message.payload), received, ack)

    def _ack(self, client: mqtt.Client, generation: int, mid: int, qos: int) -> None:
        """PUBACK after the commit, unless the connection changed: a mid from an older one may name another
        message now (the broker redelivers the old one, and dedup drops the copy)."""
        if generation == self._generation:
            client.ack(mid, qos)
