"""Subscribes to a device's events and prints, per event, when it arrived and its capture time.

    python bench/mqtt_listener.py HOST PORT TOPIC

Run as its own process by ``bench/rtsp_camera.py`` so that receiving costs the measured agent no CPU.
Prints ``subscribed`` once the broker has acknowledged the subscription, then one line per event:
``<receive time, epoch ms> <the event's ts_ms (capture time)>``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main(host: str, port: int, topic: str) -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-listener-{time.time_ns()}")

    def on_connect(c, userdata, flags, reason_code, properties=None) -> None:
        c.subscribe(topic, qos=1)

    def on_subscribe(c, userdata, mid, reason_codes, properties=None) -> None:
        print("subscribed", flush=True)

    def on_message(c, userdata, message) -> None:
        received = time.time() * 1000
        try:
            ts_ms = json.loads(message.payload)["ts_ms"]
        except (ValueError, KeyError):
            return
        print(f"{received:.1f} {ts_ms}", flush=True)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(host, port)
    client.loop_start()
    done.wait()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
