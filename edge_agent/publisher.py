"""MQTT publishing: the spool is drained by a sender thread; a spool row is deleted only on PUBACK.

Retained ``status`` is published on every connect, with a retained ``offline`` status as the last will.
Items appended while the link was down are marked ``historical`` when they are finally sent.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge_agent.config import MqttConfig
from edge_agent.spool import Spool, SpoolItem
from fieldline.contract import parse_topic

log = logging.getLogger(__name__)


def _mark_historical(item: SpoolItem) -> bytes:
    """Set ``historical: true`` on an event payload (other payload kinds have no such field)."""
    if parse_topic(item.topic).kind != "events":
        return item.payload
    data = json.loads(item.payload)
    data["historical"] = True
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


class Publisher:
    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        spool: Spool,
        status_topic: str,
        online_status: Callable[[], bytes],
        offline_status: bytes,
    ) -> None:
        self.config = config
        self.spool = spool
        self._status_topic = status_topic
        self._online_status = online_status
        protocol = mqtt.MQTTv5 if config.protocol == "5" else mqtt.MQTTv311
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        if config.username:
            self._client.username_pw_set(config.username, config.password)
        self._client.will_set(status_topic, offline_status, qos=1, retain=True)
        if config.tls is not None:
            config.tls.apply(self._client)
        # jitter: each device gets its own backoff bounds, so a fleet does not reconnect in lockstep
        # after a broker restart (paho doubles the delay between these bounds)
        jitter = random.uniform(0.7, 1.3)
        self._client.reconnect_delay_set(min_delay=max(1, round(config.reconnect_min_s * jitter)),
                                         max_delay=max(1, round(config.reconnect_max_s * jitter)))
        self._client.max_inflight_messages_set(config.max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self.on_connected: list[Callable[[], list[tuple[str, bytes]]]] = []  # retained messages sent on connect
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # mid -> spool id
        self._early_acks: set[int] = set()  # PUBACKs that arrived before the mid was recorded
        self._last_sent_id = 0
        self._connected_since_ms: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name=f"mqtt-sender-{client_id}", daemon=True)
        self.published = 0
        self.reconnects = 0
        self._connects = 0
        self._fail_logged = False

    @property
    def connected(self) -> bool:
        return self._connected_since_ms is not None

    def start(self) -> None:
        self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        self._sender.start()

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Subscribe (QoS1) on every connect; ``handler(topic, payload)`` runs on the network thread, so keep it short."""
        self._subscriptions[topic_filter] = handler
        if self.connected:
            self._client.subscribe(topic_filter, qos=1)

    def notify(self) -> None:
        """Wake the sender after appending to the spool."""
        self._wake.set()

    def publish_now(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Fire-and-forget publish for data that is not spooled (stats, snapshots)."""
        if not self.connected:
            return False
        return self._client.publish(topic, payload, qos=qos, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    def wait_drained(self, timeout: float) -> bool:
        """Wait until the spool is empty (everything acknowledged); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool.depth() == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return self.spool.depth() == 0

    def stop(self, offline_status: bytes | None = None) -> None:
        """Stop sending; publish the offline status (a clean shutdown does not fire the will) and disconnect."""
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout=5)
        if offline_status is not None and self.connected:
            info = self._client.publish(self._status_topic, offline_status, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason_code)
            return
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
        self._fail_logged = False
        log.info("connected to broker %s:%s", self.config.host, self.config.port)
        client.publish(self._status_topic, self._online_status(), qos=1, retain=True)
        for topic_filter in self._subscriptions:
            client.subscribe(topic_filter, qos=1)
        for provider in self.on_connected:
            for topic, payload in provider():
                client.publish(topic, payload, qos=1, retain=True)
        with self._lock:
            self._inflight.clear()
            self._early_acks.clear()
            self._last_sent_id = 0
            self._connected_since_ms = int(time.time() * 1000)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._lock:
            was_connected = self._connected_since_ms is not None
            self._connected_since_ms = None
            self._inflight.clear()
            self._early_acks.clear()
        if was_connected and not self._stop.is_set():
            log.warning("lost broker %s:%s (%s); spooling until it is back",
                        self.config.host, self.config.port, reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        if not self._fail_logged:
            log.warning("broker %s:%s unreachable; spooling and retrying with backoff",
                        self.config.host, self.config.port)
            self._fail_logged = True

    def _on_message(self, client, userdata, message) -> None:
        for topic_filter, handler in self._subscriptions.items():
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:  # noqa: BLE001 - a handler bug must not kill the network thread
                    log.exception("handler for %s failed", message.topic)

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        with self._lock:
            spool_id = self._inflight.pop(mid, None)
            if spool_id is None:
                self._early_acks.add(mid)
                return
        self.spool.remove(spool_id)
        self.published += 1

    # ------------------------------------------------------------------ sender
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                connected_since = self._connected_since_ms
                room = self.config.max_inflight - len(self._inflight)
                after = self._last_sent_id
            if connected_since is None or room <= 0:
                self._wake.wait(0.05 if connected_since else 0.5)
                self._wake.clear()
                continue
            items = self.spool.pending(room, after_id=after)
            if not items:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            for item in items:
                if not self._send(item, connected_since):
                    break

    def _send(self, item: SpoolItem, connected_since_ms: int) -> bool:
        payload = _mark_historical(item) if item.created_ms < connected_since_ms else item.payload
        info = self._client.publish(item.topic, payload, qos=item.qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        with self._lock:
            if self._connected_since_ms != connected_since_ms:
                return False  # the link dropped meanwhile: the item is resent after reconnect
            self._last_sent_id = item.id
            acked_early = info.mid in self._early_acks
            if acked_early:
                self._early_acks.discard(info.mid)
            else:
                self._inflight[info.mid] = item.id
        if acked_early:
            self.spool.remove(item.id)
            self.published += 1
        return True
