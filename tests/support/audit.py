"""An MQTT subscriber that audits a device's event stream: dedup by id, seq gaps, historical flags."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt

from fieldline.contract import events_topic


class AuditSubscriber:
    """Receives events with a persistent session; ``events`` is keyed by id (dedup), ``duplicates`` counted."""

    def __init__(self, port: int, device: str, site: str = "farm") -> None:
        self.events: dict[str, dict] = {}
        self.duplicates = 0
        self.historical: set[str] = set()  # ids seen at least once with historical=true
        self._lock = threading.Lock()
        self._topic = events_topic(site, device)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"audit-{device}", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self._topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        event = json.loads(message.payload)
        with self._lock:
            if event["historical"]:
                self.historical.add(event["id"])
            if event["id"] in self.events:
                self.duplicates += 1
            else:
                self.events[event["id"]] = event

    def seqs(self) -> list[int]:
        with self._lock:
            return sorted(e["seq"] for e in self.events.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def missing(self) -> list[int]:
        """Seqs below the highest one received that never arrived (lost events)."""
        seqs = self.seqs()
        return sorted(set(range(1, seqs[-1] + 1)) - set(seqs)) if seqs else []
