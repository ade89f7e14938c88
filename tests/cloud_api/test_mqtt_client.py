"""The ingest worker's buffered paho client: reads served from one large recv, nothing lost at the seams."""

from __future__ import annotations

import gc
import json
import socket
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud_api.ingest.mqtt_client import READ_SIZE, BufferedSocket
from cloud_api.ingest.worker import IngestWorker
from cloud_api.storage.records import EventQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import snapshot_topic
from tests.cloud_api.cloudapi_builders import SITE, Publisher, event_payload, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker


def test_small_reads_are_served_from_one_large_read_and_pending_says_what_is_left() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)
    buffered = BufferedSocket(left)
    try:
        right.sendall(b"\x30\x05hello" + b"\x40\x02ab")
        assert buffered.recv(1) == b"\x30"  # the first read took everything that had arrived
        assert buffered.pending() == 10
        assert [buffered.recv(1), buffered.recv(5)] == [b"\x05", b"hello"]
        assert buffered.recv(100) == b"\x40\x02ab"  # never more than what is buffered, even if asked for more
        assert buffered.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing buffered, nothing arrived: as the socket itself
            buffered.recv(1)
        assert buffered.fileno() == left.fileno()  # everything else is the socket's (select, setsockopt, ...)
        right.close()
        assert buffered.recv(1) == b""  # the peer closed: paho sees the end of the connection
    finally:
        left.close()
        right.close()


def test_writes_are_queued_until_flush_and_leave_in_order_when_the_socket_is_full() -> None:
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    left.setblocking(False)
    right.setblocking(False)
    buffered = BufferedSocket(left)
    packets = [bytes([0x40, 0x02, i >> 8, i & 0xFF]) for i in range(60_000)]  # PUBACKs, far more than fit
    try:
        assert all(buffered.send(p) == 4 for p in packets)  # paho is told each packet is written
        with pytest.raises(BlockingIOError):
            right.recv(1)  # nothing has left yet
        assert buffered.unsent() == 240_000
        received = bytearray()
        for _ in range(10_000):  # bounded: a flush that never finishes fails below instead of hanging
            if not buffered.unsent():
                break
            try:
                buffered.flush()
            except BlockingIOError:  # the socket is full: the rest stays queued
                assert 0 < buffered.unsent() < 240_000
            while True:
                try:
                    received += right.recv(65536)
                except BlockingIOError:
                    break
        assert bytes(received) == b"".join(packets)  # every byte once, in order
        buffered.send(b"\xe0\x00")  # DISCONNECT queued, then paho closes the socket at once
        buffered.close()
        right.setblocking(True)
        assert right.recv(16) == b"\xe0\x00"  # close wrote what was queued first
    finally:
        left.close()
        right.close()


def test_a_queued_burst_with_packets_larger_than_one_read_is_stored_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 events and two snapshots of 1.5 x READ_SIZE queued in the broker, then drained by the worker:
    packets straddle the 64 KiB reads, and the loop keeps reading what is buffered without waiting."""
    with MosquittoBroker(extra_config="max_queued_messages 10000\n") as broker:  # the default queue is 1,000
        drain_a_queued_burst(tmp_path, broker, monkeypatch)


def drain_a_queued_burst(tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path, broker, mqtt_client_id="api-burst", snapshot_max_bytes=4 * READ_SIZE)
    store = SqliteStore(tmp_path / "burst.db")
    store.open()
    worker = IngestWorker(settings, store)
    worker.start()
    assert worker.wait_connected(10)
    worker.stop()  # the persistent session now queues what is published
    jpeg = b"\xff\xd8\xff" + bytes(range(256)) * (3 * READ_SIZE // 512)
    events = f"fieldline/v1/{SITE}/edge-1/events"
    with Publisher(broker) as edge:
        infos = [edge.client.publish(events, json.dumps(event_payload(seq=seq)), qos=1) for seq in range(1, 1001)]
        edge.publish(snapshot_topic(SITE, "edge-1", "edge-1-0-7"), jpeg)
        infos += [edge.client.publish(events, json.dumps(event_payload(seq=seq)), qos=1) for seq in range(1001, 2001)]
        edge.publish(snapshot_topic(SITE, "edge-1", "edge-1-0-1500"), bytes(len(jpeg)))  # as large, not a JPEG
        for info in infos:
            info.wait_for_publish(10)
    worker = IngestWorker(settings, store)
    flushes = count_calls(monkeypatch, BufferedSocket, "flush")
    gc.collect()
    gc.disable()  # so that the count below sees every reference cycle made while draining
    worker.start()
    try:
        wait_until(lambda: worker.counters().processed >= 2002, 30, "the queued burst")
        # paho's own per-topic callback lookup leaves a cycle of six objects per message (~12,000 here)
        assert gc.collect() < 2000
        assert isinstance(worker._client.socket(), BufferedSocket)  # noqa: SLF001 - the path under test is used
        worker.flush(10)
        counters = worker.counters()
        assert (counters.received, counters.stored, counters.duplicates) == (2002, 2001, 0)
        assert counters.dead_letters == 1
        assert "not a JPEG" in store.list_dead_letters(5)[0].reason
        seqs = sorted(e["seq"] for e in store.list_events(EventQuery(limit=5000)))
        assert seqs == list(range(1, 2001))
        assert store.get_snapshot("edge-1-0-7") == jpeg
        assert 0 < flushes[0] < 200  # acknowledgements leave a read pass at a time, not one write per message
    finally:
        gc.enable()
        worker.stop()
        store.close()
    assert redelivered(broker, "api-burst") == []  # the broker got every acknowledgement before the disconnect


def count_calls(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    """Count calls of ``cls.name`` (the original still runs)."""
    calls = [0]
    original = getattr(cls, name)

    def counted(self: object, *args: object) -> object:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(cls, name, counted)
    return calls


def redelivered(broker: MosquittoBroker, client_id: str) -> list[bytes]:
    """What the broker still holds unacknowledged for a persistent session (resumed for one second)."""
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = lambda c, userdata, message: got.append(message.payload)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        time.sleep(1.0)
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_every_message_goes_to_on_message_and_per_topic_callbacks_are_refused() -> None:
    from paho.mqtt.enums import CallbackAPIVersion

    from cloud_api.ingest.mqtt_client import IngestClient

    client = IngestClient(CallbackAPIVersion.VERSION2, client_id="t")
    seen: list[bytes] = []
    client.on_message = lambda c, userdata, message: seen.append(message.payload)
    message = mqtt.MQTTMessage(mid=1, topic=b"fieldline/v1/s/d/events")
    message.payload = b"{}"
    client._handle_on_message(message)  # noqa: SLF001 - the overridden paho hook itself
    client.on_message = lambda c, userdata, message: 1 / 0  # logged, not raised into paho's loop
    client._handle_on_message(message)  # noqa: SLF001
    assert seen == [b"{}"]
    with pytest.raises(NotImplementedError):
        client.message_callback_add("fieldline/#", lambda *a: None)
