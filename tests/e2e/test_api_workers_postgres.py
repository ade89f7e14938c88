"""Three API worker processes on one PostgreSQL, sharing the MQTT subscription: a ``kill -9`` of one worker and
a PostgreSQL restart in the middle of a stream lose nothing and store nothing twice (the seq audit of the
device shows 0 missing, 0 repeated), and the WebSocket of one worker streams what the others stored."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
from websockets.sync.client import connect

from tests.cloud_api.cloudapi_builders import SITE
from tests.e2e.test_api_reliability import DEVICE, EdgeStream, broker  # noqa: F401 - broker is a fixture
from tests.support.api_process import ApiProcess
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 3


class LiveFeed:
    """A WebSocket client of one worker, collecting the ids of the count events it is pushed."""

    def __init__(self, api: ApiProcess) -> None:
        self.ids: set[str] = set()
        self.dropped = 0
        self._ws = connect(f"ws://127.0.0.1:{api.port}/api/v1/ws",
                           additional_headers={"Authorization": f"Bearer {api.token}"})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._ws:
                message = json.loads(raw)
                if message.get("type") == "count":
                    self.ids.add(message["data"]["id"])
                self.dropped = max(self.dropped, int(message.get("dropped") or 0))
        except Exception:  # noqa: BLE001 - closed at the end of the test
            return

    def close(self) -> None:
        self._ws.close()
        self._thread.join(5)


def _stored(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM events WHERE device = %s ORDER BY seq", (DEVICE,))]


def test_three_workers_survive_a_kill_9_and_a_database_restart(
    tmp_path: Path, broker: MosquittoBroker, postgres_server: PostgresServer, postgres_dsn: str  # noqa: F811
) -> None:
    n = 1500
    workers = []
    for i in range(WORKERS):
        (tmp_path / f"w{i}").mkdir()
        workers.append(ApiProcess(tmp_path / f"w{i}", broker, client_id=f"api-pg-{i}", mqtt_protocol="5",
                                  shared_group="fieldline-ingest", storage="postgres", postgres_dsn=postgres_dsn))
    for api in workers:  # one after the other: started together on a busy machine they starve each other
        api.start(timeout=90)
    t0 = time.monotonic()
    feed = LiveFeed(workers[0])
    edge = EdgeStream(broker, "5")
    try:
        edge.stream_events(n, per_second=300)
        wait_until(lambda: edge.sent >= 500 and len(_stored(postgres_dsn)) > 0, 30, what="500 events sent")
        workers[1].kill()  # kill -9 mid-stream: its committed-but-unacked messages come again
        time.sleep(0.5)
        workers[1].start(timeout=90)
        print(f"killed at {time.monotonic() - t0:.1f} s")
        wait_until(lambda: edge.sent >= 1000, 30, what="1000 events sent")
        print(f"restarting the database at {time.monotonic() - t0:.1f} s")
        postgres_server.restart()  # every worker's connections drop; writes wait, nothing is acknowledged
        edge.join(60)
        wait_until(lambda: len(set(_stored(postgres_dsn))) >= n
                   and all(api.health()["ingest"]["queue_depth"] == 0 for api in workers), 60,
                   what=f"{n} events stored")
        print(f"all stored at {time.monotonic() - t0:.1f} s")
        time.sleep(0.5)  # a late redelivery would show up as an extra row (it must not)
        seqs = _stored(postgres_dsn)
        assert seqs == list(range(1, n + 1))  # every seq exactly once
        audit = workers[2].get(f"/devices/{SITE}/{DEVICE}/audit")
        (install,) = audit["installs"]
        assert (install["missing"], install["events"], install["last_seq"]) == (0, n, n)
        healths = [api.health()["ingest"] for api in workers]
        assert all(h["store_errors"] == 0 and h["dead_letters"] == 0 for h in healths)
        assert all(api.alive for api in workers)
        # the live feed of worker 0 carried events the other workers stored (LISTEN/NOTIFY)
        wait_until(lambda: len(feed.ids) > healths[0]["stored"], 10, what="events of other workers on the feed")
        assert feed.ids <= {f"{DEVICE}-0-{s}" for s in seqs}
        print(f"stored per worker since its last start: {[h['stored'] for h in healths]}; "
              f"duplicates dropped: {[h['duplicates'] for h in healths]}; live feed: {len(feed.ids)} of {n}")
    except (AssertionError, RuntimeError):
        for api in workers:
            print(api.log()[-3000:])
        raise
    finally:
        feed.close()
        edge.close()
        for api in workers:
            api.stop()

