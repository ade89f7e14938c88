"""Cost per event of the store: worker CPU, database CPU and bytes on disk, and the sizing they imply.

    .venv/bin/python bench/store_cost.py --store postgres --events 60000
    .venv/bin/python bench/store_cost.py --store sqlite --events 60000 --record

What one API ingest worker does per event, without the broker: parse and validate the JSON (as the ingest
classifier does), then ``write_events`` in batches of ``--batch`` (as the batch writer does). Measured:

- worker CPU: this process's CPU time (``time.process_time``) per event, parse + store call;
- database CPU (``--store postgres``): CPU time of the PostgreSQL server this script starts (its processes'
  user + system time from /proc, exited backends included) per event;
- bytes per event: growth of every table and index (PostgreSQL) or of the file after a checkpoint (SQLite).

CPU times, not wall times, so a busy machine disturbs them less (caches are still shared: say so when you
quote them). From these and the load of a site (``--shed-events-per-s``: count events per shed at the busy
hour; ``--line-events-per-s``: inspected parts per line), the script prints a sizing table for 60, 1,000 and
10,000 sheds (the last with 100 lines): events/s, workers at half a core each, PostgreSQL cores, the storage
of the raw events kept for ``--retention-days``, broker connections (one edge box per shed and per line, plus
the workers). ``--worker-ingest-us`` sizes the workers with a worker's CPU per event measured through the broker by
``bench/ingest.py`` (paho and the batch writer included) instead of this script's store-only figure.
The last line is one JSON object; ``--record`` also writes it to bench/records/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cloud_api.storage.sqlite_store import SqliteStore  # noqa: E402
from fieldline.contract import Event  # noqa: E402

SITE = "farm-1"
DAY_S = 86_400
SCENARIOS = (("60 sheds", 60, 0), ("1,000 sheds", 1000, 0), ("10,000 sheds, 100 lines", 10_000, 100))


def payloads(n: int, devices: int = 40) -> list[bytes]:
    """Count events of ``devices`` edge boxes (two cameras, two rows, three labels each), in time order."""
    start = int(time.time() * 1000) - n * 50
    out = []
    for i in range(n):
        device, seq = f"edge-{i % devices:03d}", i // devices + 1
        event = {
            "schema": "fieldline.event/1", "id": f"edge-{i % devices:03d}-1-{seq}", "device": device, "site": SITE,
            "camera": f"cam-{seq % 2 + 1}", "boot": 1, "seq": seq, "ts_ms": start + i * 50,
            "zone": {"kind": "shed", "id": f"shed-{i % devices // 4 + 1}", "row": f"r{seq % 2 + 1}"},
            "kind": "count", "model": {"name": "tomato-ripeness", "version": "1.0.0", "sha256": "ab" * 32},
            "detections": [{"label": lab, "score": 0.9, "box": [0.1, 0.1, 0.2, 0.2], "track": None}
                           for lab in ("ripe", "half_ripe", "green")],
            "counts": {"ripe": seq % 7, "half_ripe": seq % 5, "green": seq % 3},
            "verdict": None, "track_state": None, "historical": False, "snapshot": None,
        }
        out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


def pg_bytes(store: Any) -> int:
    return int(store._conn().execute(  # noqa: SLF001
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    ).fetchone()[0])


def sqlite_bytes(store: SqliteStore, path: Path) -> int:
    store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # noqa: SLF001
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.suffix != ".lock")


def sizing(args: argparse.Namespace, worker_cpu: float, db_cpu: float | None, bytes_per_event: float
           ) -> dict[str, dict[str, Any]]:
    out = {}
    for name, sheds, lines in SCENARIOS:
        rate = sheds * args.shed_events_per_s + lines * args.line_events_per_s
        workers = max(1, math.ceil(rate * worker_cpu / 0.5))
        out[name] = {
            "events_per_s": round(rate, 1),
            "workers": workers,
            "db_cores": round(rate * db_cpu, 3) if db_cpu is not None else None,
            "gb_kept": round(rate * DAY_S * args.retention_days * bytes_per_event / 1e9, 1),
            "broker_connections": sheds + lines + workers,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=500, help="events per write_events call (the batch writer's)")
    parser.add_argument("--dsn", default="", help="an empty PostgreSQL database; unset: start one in a temp folder")
    parser.add_argument("--shed-events-per-s", type=float, default=0.2,
                        help="count events per shed at the busy hour (e.g. 4 cameras, one event each 20 s)")
    parser.add_argument("--line-events-per-s", type=float, default=2.0, help="inspected parts per line and second")
    parser.add_argument("--retention-days", type=int, default=30, help="raw events kept (retention_events_days)")
    parser.add_argument("--worker-ingest-us", type=float, default=None,
                        help="a worker's CPU per event through the broker (bench/ingest.py's worker_cpu_us_per_event: "
                             "paho and the batch writer too) for the sizing's worker count; unset: this run's")
    parser.add_argument("--record", action="store_true", help="also write the JSON to bench/records/")
    args = parser.parse_args()

    raw = payloads(args.events)
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="fieldline-store-cost-"))
    if args.store == "postgres":
        from cloud_api.storage.postgres_store import PostgresStore

        dsn = args.dsn
        if not dsn:
            from tests.support.postgres import PostgresServer

            server = PostgresServer()
            server.__enter__()
            dsn = server.create_database("bench")
        store: Any = PostgresStore(dsn)
    else:
        store = SqliteStore(tmp / "fieldline.db")
    store.open()
    size = (lambda: pg_bytes(store)) if args.store == "postgres" else (lambda: sqlite_bytes(store, tmp / "fieldline.db"))
    try:
        warm = [Event.model_validate_json(p) for p in raw[:args.batch]]
        store.write_events(warm, int(time.time() * 1000), raw[:args.batch])
        bytes0, db0 = size(), server.cpu_seconds() if server is not None else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(args.batch, len(raw), args.batch):
            chunk = raw[i:i + args.batch]
            events = [Event.model_validate_json(p) for p in chunk]
            store.write_events(events, int(time.time() * 1000), chunk)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        db_cpu = server.cpu_seconds() - db0 if server is not None and db0 is not None else None
        n = len(raw) - args.batch
        grown = size() - bytes0
    finally:
        store.close()
        if server is not None:
            server.__exit__(None, None, None)
    worker_cpu, db_per_event, per_event = cpu / n, (db_cpu / n if db_cpu is not None else None), grown / n
    figures: dict[str, Any] = {
        "bench": "store_cost", "store": args.store, "events": n, "batch": args.batch,
        "events_per_s_wall": round(n / wall), "worker_cpu_us_per_event": round(worker_cpu * 1e6, 1),
        "db_cpu_us_per_event": round(db_per_event * 1e6, 1) if db_per_event is not None else None,
        "bytes_per_event": round(per_event), "load_avg_1m": round(os.getloadavg()[0], 1),
        "cpu": os.cpu_count(), "assumptions": {"shed_events_per_s": args.shed_events_per_s,
                                               "line_events_per_s": args.line_events_per_s,
                                               "retention_days": args.retention_days,
                                               "worker_core_share": 0.5,
                                               "worker_cpu_us_per_event": args.worker_ingest_us},
        "command": " ".join(["python", *sys.argv]),
    }
    sized_worker = args.worker_ingest_us / 1e6 if args.worker_ingest_us is not None else worker_cpu
    figures["sizing"] = sizing(args, sized_worker, db_per_event, per_event)
    print(f"{'store':<10} {'events':>8} {'ev/s wall':>10} {'worker us/ev':>13} {'db us/ev':>9} {'bytes/ev':>9}")
    print(f"{args.store:<10} {n:>8} {figures['events_per_s_wall']:>10} {figures['worker_cpu_us_per_event']:>13} "
          f"{'-' if db_per_event is None else figures['db_cpu_us_per_event']:>9} {figures['bytes_per_event']:>9}")
    print(f"\n{'site':<26} {'events/s':>9} {'workers':>8} {'db cores':>9} {'GB kept':>9} {'connections':>12}")
    for name, row in figures["sizing"].items():
        print(f"{name:<26} {row['events_per_s']:>9} {row['workers']:>8} {'-' if row['db_cores'] is None else row['db_cores']:>9} "
              f"{row['gb_kept']:>9} {row['broker_connections']:>12}")
    if args.record:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = REPO / "bench" / "records" / f"{stamp}-store-{args.store}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"recorded in {path.relative_to(REPO)}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
