"""Ingest throughput through a real Mosquitto: bare paho subscriber vs the API ingest worker(s).

    .venv/bin/python bench/ingest.py [--events 50000] [--rounds 3] [--layout both|shared|pinned]
                                     [--store sqlite|postgres] [--backlog-workers 1,2,3] [--record]

One run, one broker (Mosquitto on a free loopback port, ``max_queued_messages`` raised so the broker itself
never drops), phases with the same publisher: a separate process publishing N contract-valid count
events (QoS1, as fast as it can) for a fresh device. Phases (a) and (b) run back to back ``--rounds`` times
and the ratio reported is the median round's: on a shared 2-core machine single rounds vary by +-0.1.

Two CPU layouts (both by default). On a 2-core machine the publisher (in production: dozens of remote devices)
takes a whole core, so with every process free to run anywhere ("shared") each microsecond the consumer
spends slows the publisher that paces it, and the ratio measures the machine's CPU budget as much as the
consumer. "pinned" puts publisher and broker on CPU 0 and the consumer (bare subscriber or worker) on CPU 1:
each consumer gets the same core, and the ratio says whether the worker keeps up with what the transport
delivers. The JSON line reports both; its ``ratio_to_bare_subscriber`` is the shared one when measured.
To see where a worker's time goes: ``py-spy record --subprocesses -- python bench/ingest.py --layout pinned``.

  (a) bare:        a bare paho subscriber (QoS1, auto ack) in its own process; counts messages.
  (b) worker:      one API ingest worker (IngestWorker + BatchWriter + the store, acks after commit) in its
                   own process, on a fresh SQLite file or (``--store postgres``) a fresh PostgreSQL database.
  (c) two workers: two such processes on one store, sharing an MQTT 5 subscription ($share/...),
                   against the live publisher. On 2 cores the publisher already takes one: no room to scale.
  (d) backlog:     catch-up after an outage, the case where more workers matter when the devices are
                   remote: N events queued in persistent sessions while the workers were away, then drained
                   by each count of ``--backlog-workers`` on a shared subscription (``--rounds`` rounds; the
                   round with the median 2-worker scaling is reported).

``--store postgres`` starts a throwaway PostgreSQL the way the tests do (``tests/support/postgres.py``: initdb in
a temp folder, a free port, an unprivileged user, fsync off) and gives each phase a database of its own; it
also reports the server's CPU per event stored by one worker (``db_cpu_us_per_event``).

Rate = N / (time of the last message received (a) or stored (b, c) - publisher start), the same clock for
all phases; for (d), N / (last stored - first stored). Audit by seq: lost = seqs never received/stored;
duplicates = redeliveries seen (the store keeps one). Prints a table; the LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SITE = "bench"
BROKER_CONFIG = "max_queued_messages 1000000\nmax_inflight_messages 0\n"


def payloads(device: str, n: int) -> list[bytes]:
    now = int(time.time() * 1000)
    template = {
        "schema": "fieldline.event/1", "device": device, "site": SITE, "camera": "cam-1", "boot": 1,
        "zone": {"kind": "shed", "id": "shed-01", "row": "r1"}, "kind": "count",
        "model": {"name": "tomato-ripeness", "version": "1.0.0", "sha256": "ab" * 32},
        "detections": [{"label": lab, "score": 0.9, "box": [0.1, 0.1, 0.2, 0.2], "track": None}
                       for lab in ("ripe", "half_ripe", "green")],
        "verdict": None, "track_state": None, "historical": False, "snapshot": None,
    }
    out = []
    for seq in range(1, n + 1):
        event = dict(template, id=f"{device}-1-{seq}", seq=seq, ts_ms=now + seq,
                     counts={"ripe": seq % 7, "half_ripe": seq % 5, "green": seq % 3})
        out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


# ---------------------------------------------------------------------------------------------- children


def child_publish(args: argparse.Namespace) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from fieldline.contract import events_topic

    data = payloads(args.device, args.events)
    topic = events_topic(SITE, args.device)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    start = time.time()
    infos = [client.publish(topic, payload, qos=1) for payload in data]
    for info in infos:
        info.wait_for_publish(timeout=120)
    end = time.time()
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"start": start, "end": end, "published": sum(i.is_published() for i in infos)}), flush=True)


def child_bare(args: argparse.Namespace) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    seqs: list[int] = []
    last = [0.0]
    ready = threading.Event()
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        payload = message.payload
        i = payload.index(b'"seq":') + 6
        seqs.append(int(payload[i:payload.index(b",", i)]))
        last[0] = time.time()
        if len(seqs) >= args.events:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:8]}")
    client.on_message = on_message
    client.on_subscribe = lambda *a: ready.set()
    client.connect("127.0.0.1", args.port)
    client.subscribe(f"fieldline/v1/{SITE}/{args.device}/events", qos=1)
    client.loop_start()
    ready.wait(10)
    print("READY", flush=True)
    while not done.wait(0.5):
        if seqs and time.time() - last[0] > 10:
            break
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"last": last[0], "received": len(seqs), "distinct": len(set(seqs))}), flush=True)


def child_worker(args: argparse.Namespace) -> None:
    from cloud_api.core.config import Settings
    from cloud_api.core.gc_tuning import tune_for_server
    from cloud_api.ingest.worker import IngestWorker
    from cloud_api.storage.factory import build_store

    where: dict[str, Any] = ({"storage": "postgres", "postgres_dsn": args.dsn} if args.dsn else
                             {"db_path": Path(args.db)})
    settings = Settings(
        data_dir=Path(args.db).parent if args.db else Path(tempfile.gettempdir()), mqtt_port=args.port,
        mqtt_client_id=args.client_id, mqtt_protocol="5" if args.group else "3.1.1", shared_group=args.group or None,
        mqtt_persistent_session=args.persistent, ingest_batch_max=args.batch_max, **where,
    )
    store = build_store(settings)
    store.open()
    worker = IngestWorker(settings, store)
    tune_for_server()  # as ``fieldline api serve`` does
    cpu_start = time.process_time()  # a persistent session starts draining its backlog as it connects
    worker.start()
    if not worker.wait_connected(60):  # a loaded machine can take a while
        raise SystemExit("worker did not connect")
    print("READY", flush=True)
    sys.stdin.readline()  # the parent says stop
    worker.stop()
    cpu_s = time.process_time() - cpu_start
    c = worker.counters()
    store.close()
    print(json.dumps({"received": c.received, "stored": c.stored, "duplicates": c.duplicates,
                      "dead_letters": c.dead_letters, "store_errors": c.store_errors, "cpu_s": cpu_s}), flush=True)


# ---------------------------------------------------------------------------------------------- parent


PINNED = False  # the "pinned" layout: see set_layout()


class SqliteTarget:
    """A fresh SQLite file for one phase: what the workers are told, and the parent's read-only look at it."""

    store = "sqlite"

    def __init__(self) -> None:
        self.db = Path(tempfile.mkdtemp(prefix="fieldline-bench-")) / "fl.db"
        self._conn: sqlite3.Connection | None = None

    def worker_args(self) -> list[str]:
        return ["--db", str(self.db)]

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.db, timeout=30)
        return self._conn

    def stored_at_least(self, n: int, device: str) -> bool:
        # max(rowid) is one b-tree descent; count(*) scans the table and, polled every 20 ms, would take CPU
        # from the worker being measured. Rows are never deleted here, so max(rowid) >= n means all stored
        # (confirmed by count(*) once).
        if (self._c().execute("SELECT max(rowid) FROM events").fetchone()[0] or 0) < n:
            return False
        return self._c().execute("SELECT count(*) FROM events").fetchone()[0] >= n

    def audit(self, device: str) -> tuple[int, int, int]:
        """(first received_ms, last received_ms, distinct seqs stored) of ``device``."""
        row = self._c().execute("SELECT min(received_ms), max(received_ms), count(DISTINCT seq) FROM events"
                                " WHERE device = ?", (device,)).fetchone()
        return int(row[0] or 0), int(row[1] or 0), int(row[2])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresTarget:
    """A fresh database on the bench's PostgreSQL for one phase (same calls as ``SqliteTarget``)."""

    store = "postgres"

    def __init__(self, server: Any, name: str) -> None:
        import psycopg

        self.dsn = server.create_database(name)
        self._conn = psycopg.connect(self.dsn, autocommit=True)

    def worker_args(self) -> list[str]:
        return ["--dsn", self.dsn]

    def stored_at_least(self, n: int, device: str) -> bool:
        # the publisher's last id first (one primary-key probe), the count only then: a count every 20 ms
        # would take the server's CPU from the worker being measured
        last = self._conn.execute("SELECT 1 FROM event_ids WHERE id = %s", (f"{device}-1-{n}",)).fetchone()
        return last is not None and self._conn.execute("SELECT count(*) FROM event_ids").fetchone()[0] >= n

    def audit(self, device: str) -> tuple[int, int, int]:
        row = self._conn.execute("SELECT min(received_ms), max(received_ms), count(DISTINCT seq) FROM events"
                                 " WHERE device = %s", (device,)).fetchone()
        assert row is not None
        return int(row[0] or 0), int(row[1] or 0), int(row[2])

    def close(self) -> None:
        self._conn.close()


class Backend:
    """The store the workers write to: ``sqlite`` (a file per phase) or ``postgres`` (one server, a database per
    phase, its CPU time measured)."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.server: Any = None
        self._phases = 0

    def __enter__(self) -> Backend:
        if self.store == "postgres":
            from tests.support.postgres import PostgresServer

            self.server = PostgresServer().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()

    def target(self) -> SqliteTarget | PostgresTarget:
        self._phases += 1
        return SqliteTarget() if self.server is None else PostgresTarget(self.server, f"phase{self._phases}")

    def cpu_seconds(self) -> float | None:
        """The database server's CPU time so far (None for SQLite, which runs inside the workers)."""
        return self.server.cpu_seconds() if self.server is not None else None

    def settings(self) -> dict[str, str] | None:
        from tests.support.postgres import SETTINGS

        return dict(SETTINGS) if self.server is not None else None


def spawn(*argv: str) -> subprocess.Popen[str]:
    if PINNED:
        argv += ("--cpu", "0" if argv[argv.index("--role") + 1] == "publish" else "1")
    return subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def wait_ready(proc: subprocess.Popen[str]) -> None:
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "READY":
        raise RuntimeError(f"child did not get ready: {line!r}")


def last_json(proc: subprocess.Popen[str], timeout: float = 180) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def stop_children(children: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Tell worker children to stop; their final counters."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("stop\n")
        child.stdin.flush()
    return [last_json(child) for child in children]


def publish(port: int, device: str, n: int) -> subprocess.Popen[str]:
    return spawn("--role", "publish", "--port", str(port), "--device", device, "--events", str(n))


def phase_bare(port: int, n: int, device: str) -> dict[str, Any]:
    sub = spawn("--role", "bare", "--port", str(port), "--device", device, "--events", str(n))
    wait_ready(sub)
    pub = publish(port, device, n)
    p = last_json(pub)
    s = last_json(sub)
    return {"events_per_s": s["distinct"] / (s["last"] - p["start"]), "lost": n - s["distinct"],
            "duplicates": s["received"] - s["distinct"], "publish_per_s": n / (p["end"] - p["start"])}


def phase_workers(backend: Backend, port: int, n: int, workers: int, batch_max: int, device: str) -> dict[str, Any]:
    target = backend.target()
    group = "fieldline-api" if workers > 1 else ""
    children = []
    for i in range(workers):
        argv = ["--role", "worker", "--port", str(port), *target.worker_args(),
                "--client-id", f"api-{i}-{uuid.uuid4().hex[:6]}", "--group", group, "--batch-max", str(batch_max)]
        children.append(spawn(*argv))
    for child in children:
        wait_ready(child)
    db_cpu0 = backend.cpu_seconds()
    pub = publish(port, device, n)
    deadline = time.time() + 180
    done_at = None
    while time.time() < deadline:
        if target.stored_at_least(n, device):
            done_at = time.time()
            break
        time.sleep(0.02)
    db_cpu1 = backend.cpu_seconds()
    p = last_json(pub)
    if done_at is None:
        time.sleep(5)  # give redeliveries a last chance before the audit
    counters = stop_children(children)
    distinct = target.audit(device)[2]
    target.close()
    end = done_at or time.time()
    out = {"events_per_s": distinct / (end - p["start"]), "lost": n - distinct,
           "duplicates": sum(c["duplicates"] for c in counters), "per_worker_stored": [c["stored"] for c in counters],
           "store_errors": sum(c["store_errors"] for c in counters), "publish_per_s": n / (p["end"] - p["start"]),
           "cpu_us_per_event": sum(c["cpu_s"] for c in counters) / n * 1e6}
    if db_cpu0 is not None and db_cpu1 is not None:
        out["db_cpu_us_per_event"] = (db_cpu1 - db_cpu0) / n * 1e6
    return out


def phase_backlog(backend: Backend, port: int, n: int, workers: int, batch_max: int, device: str) -> dict[str, Any]:
    """Catch-up after an outage: N events queued in the workers' persistent sessions, then drained.

    The workers subscribe (MQTT 5, shared group, persistent sessions) and go away; the publisher queues N
    events (the broker splits them between the sessions); the workers come back and drain. Rate = N / (the
    last stored - the first stored, by the rows' received_ms), so process start-up is not counted.
    """
    target = backend.target()
    group = f"backlog-{uuid.uuid4().hex[:6]}"  # a group of its own: no other phase's session shares the load
    argvs = [["--role", "worker", "--port", str(port), *target.worker_args(), "--client-id", f"{group}-{i}",
              "--group", group, "--batch-max", str(batch_max)] for i in range(workers)]

    def run_workers(*extra: str) -> list[subprocess.Popen[str]]:
        children = [spawn(*argv, *extra) for argv in argvs]
        for child in children:
            wait_ready(child)
        return children

    stop_children(run_workers("--persistent"))  # the sessions now exist and queue while their workers are away
    p = last_json(publish(port, device, n))
    children = run_workers("--persistent")
    deadline = time.time() + 240
    while time.time() < deadline and not target.stored_at_least(n, device):
        time.sleep(0.05)
    counters = stop_children(children)
    stop_children(run_workers())  # clean sessions: the broker forgets them and queues nothing more for them
    first, last, distinct = target.audit(device)
    target.close()
    seconds = max(1e-3, (last - first) / 1000)
    return {"workers": workers, "seconds": seconds, "events_per_s": distinct / seconds, "lost": n - distinct,
            "duplicates": sum(c["duplicates"] for c in counters), "per_worker_stored": [c["stored"] for c in counters],
            "store_errors": sum(c["store_errors"] for c in counters), "publish_per_s": n / (p["end"] - p["start"]),
            "cpu_us_per_event": sum(c["cpu_s"] for c in counters) / n * 1e6}


WORDS = {1: "one_worker", 2: "two_workers", 3: "three_workers", 4: "four_workers"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-max", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3,
                        help="bare-then-worker rounds; the ratio reported is the median round's (the machine is noisy)")
    parser.add_argument("--layout", choices=("both", "shared", "pinned"), default="both",
                        help="shared: every process on any CPU (publisher, broker and consumer compete); pinned: "
                             "publisher and broker on CPU 0, the subscriber or worker on CPU 1 (devices and broker "
                             "elsewhere, the consumer with a core of its own); both (default)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="what the workers write to: a SQLite file, or a PostgreSQL started in a temp folder")
    parser.add_argument("--backlog-workers", default="1,2,3",
                        help="worker counts draining the backlog, comma-separated (default 1,2,3)")
    parser.add_argument("--record", action="store_true", help="also write the JSON to bench/records/")
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default="", help=argparse.SUPPRESS)
    parser.add_argument("--client-id", default="", help=argparse.SUPPRESS)
    parser.add_argument("--group", default="", help=argparse.SUPPRESS)
    parser.add_argument("--persistent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    if args.role != "main":
        {"publish": child_publish, "bare": child_bare, "worker": child_worker}[args.role](args)
        return
    try:
        counts = sorted({int(x) for x in args.backlog_workers.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--backlog-workers: comma-separated worker counts, not {args.backlog_workers!r}")
    if not counts or counts[0] != 1 or counts[-1] > max(WORDS):
        parser.error(f"--backlog-workers must start at 1 and go up to at most {max(WORDS)}: {args.backlog_workers!r}")

    from tests.support.mosquitto import MosquittoBroker

    n = args.events
    layouts = ("shared", "pinned") if args.layout == "both" else (args.layout,)
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    started = time.time()
    with MosquittoBroker(extra_config=BROKER_CONFIG) as broker, Backend(args.store) as backend:
        for layout in layouts:
            results[layout] = run_rounds(backend, broker, layout, args)
        set_layout(broker, "shared")
        two = phase_workers(backend, broker.port, n, 2, args.batch_max, "two")
        backlog = [{k: phase_backlog(backend, broker.port, n, k, args.batch_max, f"backlog-{k}-{r}") for k in counts}
                   for r in range(args.rounds)]
    load_after = os.getloadavg()[0]
    store = args.store
    print(f"ingest bench ({store}): {n} count events per phase, QoS1, Mosquitto on loopback, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before, {load_after:.1f} after, {time.time() - started:.0f} s")
    for layout, result in results.items():
        print_rounds(layout, result, store)
    print(f"\n(c) 2 workers, $share, 1 {store} store, shared CPUs: {two['events_per_s']:.0f} events/s "
          f"(publisher {two['publish_per_s']:.0f}/s, lost {two['lost']}, duplicates {two['duplicates']}, "
          f"{two['cpu_us_per_event']:.0f} us of worker CPU per event), split {two['per_worker_stored']}")
    top = 2 if 2 in counts else counts[-1]
    scaling = [{k: r[k]["events_per_s"] / r[1]["events_per_s"] for k in counts} for r in backlog]
    middle = sorted(range(len(backlog)), key=lambda i: scaling[i][top])[len(backlog) // 2]
    print(f"\n(d) backlog catch-up: {n} events queued in persistent sessions while the workers were away, then drained")
    print(f"{'round':>5}  {'phase':<30}{'seconds':>9}{'events/s':>10}{'lost':>7}{'dups':>7}{'x one':>8}"
          f"{'worker CPU us/event':>21}")
    for i, r in enumerate(backlog):
        for k in counts:
            name = "1 worker" if k == 1 else f"{k} workers, $share"
            shown = "" if k == 1 else f"{scaling[i][k]:.2f}"
            print(f"{i + 1:>5}  {name:<30}{r[k]['seconds']:>9.2f}{r[k]['events_per_s']:>10.0f}{r[k]['lost']:>7}"
                  f"{r[k]['duplicates']:>7}{shown:>8}{r[k]['cpu_us_per_event']:>21.0f}")
    print(f"reported: round {middle + 1} (median {top}-worker scaling of {len(backlog)} rounds)")
    main_layout = results.get("shared") or results["pinned"]
    one = main_layout["one"]
    figures: dict[str, Any] = {
        "bench": "ingest", "store": store, "events": n, "layout": "shared" if "shared" in results else "pinned",
        "events_per_s": round(one["events_per_s"]),
        "ratio_to_bare_subscriber": round(main_layout["ratio"], 3),
        "bare_subscriber_events_per_s": round(main_layout["bare"]["events_per_s"]),
        "worker_cpu_us_per_event": round(one["cpu_us_per_event"], 1),
        "two_workers_events_per_s": round(two["events_per_s"]), "two_workers_split": two["per_worker_stored"],
    }
    if "db_cpu_us_per_event" in one:
        figures["db_cpu_us_per_event"] = round(one["db_cpu_us_per_event"], 1)
        figures["db_cpu_us_per_event_rounds"] = [round(o["db_cpu_us_per_event"], 1)
                                                 for r in results.values() for _, o in r["rounds"]]
    picked = backlog[middle]
    for k in counts:
        figures[f"backlog_{WORDS[k]}_events_per_s"] = round(picked[k]["events_per_s"])
        figures[f"backlog_{WORDS[k]}_seconds"] = round(picked[k]["seconds"], 2)
        if k > 1:
            figures[f"backlog_{WORDS[k]}_scaling"] = round(scaling[middle][k], 2)
            figures[f"backlog_{WORDS[k]}_split"] = picked[k]["per_worker_stored"]
    if 2 in counts:
        figures["backlog_scaling_rounds"] = [round(x[2], 2) for x in scaling]
    for k in counts[1:]:
        figures[f"backlog_{WORDS[k]}_scaling_rounds"] = [round(x[k], 2) for x in scaling]
        figures[f"backlog_{WORDS[k]}_scaling_median"] = round(statistics.median(x[k] for x in scaling), 2)
    for layout, result in results.items():
        figures[f"{layout}_ratio"] = round(result["ratio"], 3)
        figures[f"{layout}_ratio_rounds"] = [round(x, 3) for x in result["ratios"]]
        figures[f"{layout}_events_per_s"] = round(result["one"]["events_per_s"])
        figures[f"{layout}_events_per_s_rounds"] = [round(o["events_per_s"]) for _, o in result["rounds"]]
        figures[f"{layout}_bare_events_per_s"] = round(result["bare"]["events_per_s"])
    everything = ([o for r in results.values() for _, o in r["rounds"]] + [two]
                  + [o for r in backlog for o in r.values()])
    figures.update(
        lost=sum(o["lost"] for o in everything), duplicates=sum(o["duplicates"] for o in everything),
        bare_lost=sum(b["lost"] for r in results.values() for b, _ in r["rounds"]),
        store_errors=sum(o["store_errors"] for o in everything),
        load_avg_1m_before=round(load_before, 1), load_avg_1m_after=round(load_after, 1), cpu=os.cpu_count(),
        batch_max=args.batch_max, rounds=args.rounds, command=" ".join(["python", *sys.argv]),
    )
    if backend.settings() is not None:
        figures["postgres_settings"] = backend.settings()
    if args.record:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "records" / f"{stamp}-ingest-{store}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"recorded in {path.relative_to(ROOT)}")
    print(json.dumps(figures))


def set_layout(broker: Any, layout: str) -> None:
    global PINNED
    PINNED = layout == "pinned"
    assert broker.pid is not None
    os.sched_setaffinity(broker.pid, {0} if PINNED else set(range(os.cpu_count() or 1)))


def run_rounds(backend: Backend, broker: Any, layout: str, args: argparse.Namespace) -> dict[str, Any]:
    """``args.rounds`` bare-then-worker rounds (back to back, so each ratio sees one machine state)."""
    set_layout(broker, layout)
    rounds = []
    for r in range(args.rounds):
        bare = phase_bare(broker.port, args.events, f"bare-{layout}-{r}")
        one = phase_workers(backend, broker.port, args.events, 1, args.batch_max, f"one-{layout}-{r}")
        rounds.append((bare, one))
    ratios = [one["events_per_s"] / bare["events_per_s"] for bare, one in rounds]
    middle = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]  # the median round
    return {"rounds": rounds, "ratios": ratios, "middle": middle, "ratio": ratios[middle],
            "bare": rounds[middle][0], "one": rounds[middle][1]}


def print_rounds(layout: str, result: dict[str, Any], store: str) -> None:
    where = ("publisher and broker on CPU 0, subscriber / worker on CPU 1" if layout == "pinned"
             else "every process on any CPU")
    print(f"\nlayout {layout}: {where}")
    db = "db CPU us/event" if "db_cpu_us_per_event" in result["one"] else ""
    print(f"{'round':>5}  {'phase':<30}{'events/s':>10}{'publish/s':>11}{'lost':>7}{'dups':>7}{'ratio':>8}"
          f"{'worker CPU us/event':>21}{db:>17}")
    for i, (bare, one) in enumerate(result["rounds"], 1):
        for name, r, shown in (("(a) bare paho subscriber", bare, ""),
                               (f"(b) 1 ingest worker, {store}", one, f"{result['ratios'][i - 1]:.3f}")):
            cpu = f"{r['cpu_us_per_event']:.0f}" if "cpu_us_per_event" in r else ""
            db_cpu = f"{r['db_cpu_us_per_event']:.0f}" if "db_cpu_us_per_event" in r else ""
            print(f"{i:>5}  {name:<30}{r['events_per_s']:>10.0f}{r['publish_per_s']:>11.0f}{r['lost']:>7}"
                  f"{r['duplicates']:>7}{shown:>8}{cpu:>21}{db_cpu:>17}")
    print(f"worker / bare subscriber ({layout}), median of {len(result['rounds'])} rounds: {result['ratio']:.1%} "
          f"(round {result['middle'] + 1}; target >= 80 %)")


if __name__ == "__main__":
    main()
