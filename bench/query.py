"""Query latency of the shed overview and a week-long trend, over HTTP, on a seeded SQLite store.

    .venv/bin/python bench/query.py [--sheds 60] [--days 7] [--requests 200] [--store sqlite|postgres] [--record]

Seeds N sheds x D days of per-minute count events (one camera per shed, three labels each; 60 x 7 days =
604,800 events, 1.8 M count points) by bulk SQL into a fresh store, builds the minute/hour rollups from
them (the same backfill an existing database gets), then serves the real API (uvicorn, loopback) and times
``GET /api/v1/sheds`` and ``GET /api/v1/sheds/{id}/counts`` for the last week at hourly buckets (``from``
on an hour boundary, ``to`` = now), each R times, cycling through the sheds. Prints a table; the LAST line
is one JSON object. ``--store postgres``: the seeded file is moved into a PostgreSQL started in a temp folder
with ``fieldline api migrate``'s code (COPY, partitions, count check), and the API runs on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
TOKEN = "bench-token"


def seed(db: Path, sheds: int, days: int, now_ms: int) -> tuple[int, float]:
    from cloud_api.storage import sqlite_rollups
    from cloud_api.storage.sqlite_store import SqliteStore

    store = SqliteStore(db)
    store.open()  # creates the schema
    store.close()
    import sqlite3

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    end = now_ms // MIN * MIN
    start = end - days * DAY
    model = {"name": "tomato-ripeness", "version": "1.0.0", "sha256": "ab" * 32}
    total = 0
    conn.execute("BEGIN")
    for s in range(1, sheds + 1):
        shed, device = f"shed-{s:02d}", f"edge-{s:02d}"
        events, points = [], []
        for i, ts in enumerate(range(start, end, MIN)):
            counts = {"ripe": (i + s) % 40, "half_ripe": (i * 3 + s) % 25, "green": (i * 7 + s) % 60}
            event_id = f"{device}-1-{i}"
            payload = {
                "schema": "fieldline.event/1", "id": event_id, "device": device, "site": "farm", "camera": "cam-1",
                "boot": 1, "seq": i, "ts_ms": ts, "zone": {"kind": "shed", "id": shed, "row": None},
                "kind": "count", "model": model, "detections": [], "counts": counts, "verdict": None,
                "track_state": None, "historical": False, "snapshot": None,
            }
            events.append((event_id, device, "farm", "cam-1", "count", "shed", shed, None, ts, 1, i, 0,
                           json.dumps(payload, separators=(",", ":")), ts))
            points.extend((event_id, "shed", shed, None, device, "cam-1", ts, label, n) for label, n in counts.items())
        conn.executemany(
            "INSERT INTO events (id, device, site, camera, kind, zone_kind, zone_id, row, ts_ms, boot, seq,"
            " historical, payload, received_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", events)
        conn.executemany(
            "INSERT INTO count_points (event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n)"
            " VALUES (?,?,?,?,?,?,?,?,?)", points)
        last = events[-1]
        conn.execute(
            "INSERT INTO latest_counts (zone_kind, zone_id, site, device, camera, row_key, event_id, ts_ms, boot,"
            " seq) VALUES ('shed', ?, 'farm', ?, 'cam-1', '', ?, ?, 1, ?)", (shed, device, last[0], last[8], last[10]))
        conn.execute(
            "INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms) VALUES (?, 'farm', 'online', ?, ?)",
            (device, now_ms, start))
        total += len(events)
    for table in sqlite_rollups.TABLES:
        sqlite_rollups.rebuild(conn, table)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return total, time.perf_counter() - started


def timed(client: object, path: str, params_list: list[dict[str, int]]) -> list[float]:
    times = []
    for params in params_list:
        t = time.perf_counter()
        response = client.get(path if "{" not in path else path.format(**params), params=params.get("q"))  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.text
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sheds", type=int, default=60)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--record", action="store_true", help="also write the JSON to bench/records/")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from cloud_api.core.config import Settings

    now = time.time_ns() // 1_000_000
    data_dir = Path(tempfile.mkdtemp(prefix="fieldline-query-bench-"))
    events, seed_s = seed(data_dir / "fieldline.db", args.sheds, args.days, now)
    server = None
    storage: dict[str, str] = {}
    if args.store == "postgres":
        from cloud_api.storage.postgres_migrate import migrate
        from tests.support.postgres import PostgresServer

        server = PostgresServer().__enter__()
        dsn = server.create_database("query_bench")
        started = time.perf_counter()
        migrate(data_dir / "fieldline.db", dsn)
        seed_s += time.perf_counter() - started
        storage = {"storage": "postgres", "postgres_dsn": dsn}
    settings = Settings(data_dir=data_dir, api_tokens=[TOKEN], ingest_enabled=False, **storage)
    try:
        run = _measure(settings, args, now)
    finally:
        if server is not None:
            server.close()
    sheds, sample, overview, trend = run
    print(f"query bench ({args.store}): {args.sheds} sheds x {args.days} days of per-minute counts = {events:,} events "
          f"({events * 3:,} count points), seeded + rolled up in {seed_s:.1f} s\n")
    print(f"{'request':<44}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, values in (("GET /api/v1/sheds (overview)", overview),
                         ("GET /sheds/{id}/counts week, 1 h buckets", trend)):
        print(f"{name:<44}{len(values):>5}{statistics.median(values):>9.1f}{pct(values, 95):>9.1f}{max(values):>9.1f}")
    print(f"\ntrend answer: {len(sample['points'])} hourly points; overview: {len(sheds)} sheds")
    figures = {
        "bench": "query", "store": args.store, "events": events, "overview_p50_ms": round(statistics.median(overview), 2),
        "overview_p95_ms": round(pct(overview, 95), 2), "trend_p50_ms": round(statistics.median(trend), 2),
        "trend_p95_ms": round(pct(trend, 95), 2), "trend_points": len(sample["points"]), "seed_s": round(seed_s, 1),
        "requests": args.requests, "load_avg_1m_before": round(load_before, 1),
        "load_avg_1m_after": round(os.getloadavg()[0], 1), "cpu": os.cpu_count(),
        "command": " ".join(["python", *sys.argv]),
    }
    if args.store == "postgres":
        from tests.support.postgres import SETTINGS

        figures["postgres_settings"] = dict(SETTINGS)
    if args.record:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = ROOT / "bench" / "records" / f"{stamp}-query-{args.store}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"recorded in {path.relative_to(ROOT)}")
    print(json.dumps(figures))


def _measure(settings: object, args: argparse.Namespace, now: int) -> tuple[list, dict, list[float], list[float]]:
    from tests.support.live_api import LiveApi

    with LiveApi(settings) as api, api.client() as client:  # type: ignore[arg-type]
        sheds = client.get("/api/v1/sheds").json()
        assert len(sheds) == args.sheds, len(sheds)
        week_from = (now // HOUR) * HOUR - 7 * DAY
        trend_params = [
            {"id": f"shed-{i % args.sheds + 1:02d}", "q": {"from": week_from, "to": now, "bucket": HOUR}}
            for i in range(args.requests)
        ]
        sample = client.get("/api/v1/sheds/shed-01/counts", params=trend_params[0]["q"]).json()
        for _ in range(5):  # warm up connections and caches
            client.get("/api/v1/sheds")
        overview = timed(client, "/api/v1/sheds", [{}] * args.requests)
        trend = timed(client, "/api/v1/sheds/{id}/counts", trend_params)
    return sheds, sample, overview, trend


if __name__ == "__main__":
    main()
