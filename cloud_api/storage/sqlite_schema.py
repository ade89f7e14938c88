"""SQLite schema and connection handling (WAL, one connection per thread)."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloud_api.storage import sqlite_identity
from cloud_api.training import store as training_store

SCHEMA_VERSION = 4  # 2: users, tokens, alert lifecycle, harvest plans (added); 3: count_points without rowid;
# 4: devices keyed by (site, device), events.instance, latest_counts.site, device_instances, id_collisions

# Every read joins count points by event id: keyed by (event_id, label) alone, one b-tree per point
# (schema 2 had a rowid table, its key index and a zone index nothing read: ingest paid three).
COUNT_POINTS_DDL = """
CREATE TABLE IF NOT EXISTS count_points (
    event_id TEXT NOT NULL,
    zone_kind TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    row TEXT,
    device TEXT NOT NULL,
    camera TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    label TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (event_id, label)
) WITHOUT ROWID;
"""
_COUNT_POINT_COLUMNS = "event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n"

DDL = COUNT_POINTS_DDL + """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    kind TEXT NOT NULL,
    zone_kind TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    row TEXT,
    ts_ms INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    historical INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    instance TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms);
CREATE INDEX IF NOT EXISTS events_site_device_ts ON events (site, device, ts_ms);
CREATE INDEX IF NOT EXISTS events_install_seq ON events (site, device, instance, seq);
CREATE INDEX IF NOT EXISTS events_zone_ts ON events (zone_id, ts_ms);
CREATE INDEX IF NOT EXISTS events_zone_kind_ts ON events (zone_kind, zone_id, kind, ts_ms);

-- the latest count event per (zone, site, device, camera, row); row_key is '' for no row
CREATE TABLE IF NOT EXISTS latest_counts (
    zone_kind TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    camera TEXT NOT NULL,
    row_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (zone_kind, zone_id, site, device, camera, row_key)
);

-- a device is (site, device): device names are chosen per site by people
CREATE TABLE IF NOT EXISTS devices (
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    state TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    boot INTEGER NOT NULL DEFAULT 0,
    agent_version TEXT NOT NULL DEFAULT '',
    status_ts_ms INTEGER,
    model TEXT,
    cameras TEXT NOT NULL DEFAULT '[]',
    stats TEXT,
    instance TEXT,
    PRIMARY KEY (site, device)
);

CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    zone_kind TEXT,
    zone_id TEXT,
    severity TEXT NOT NULL,
    code TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts_ms);

CREATE TABLE IF NOT EXISTS snapshots (
    event_id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    jpeg BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);

-- alert lifecycle: one row per dedup key while open; payloads above are grouped into it
CREATE TABLE IF NOT EXISTS alert_lifecycle (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'cleared')),
    first_alert_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    zone_kind TEXT,
    zone_id TEXT,
    zone_row TEXT,
    severity TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    count INTEGER NOT NULL,
    acknowledged_by TEXT,
    acknowledged_ms INTEGER,
    cleared_by TEXT,
    cleared_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS alert_lifecycle_open_key ON alert_lifecycle (dedup_key) WHERE state != 'cleared';
CREATE INDEX IF NOT EXISTS alert_lifecycle_last_ts ON alert_lifecycle (last_ts_ms);
CREATE INDEX IF NOT EXISTS alert_lifecycle_zone ON alert_lifecycle (zone_kind, zone_id, state);

CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- login tokens: only the SHA-256 of the token is stored
CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER,
    expires_ms INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_username ON tokens (username);

CREATE TABLE IF NOT EXISTS harvest_plans (
    date TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    created_by TEXT,
    plan TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS harvest_done (
    date TEXT NOT NULL,
    shed_id TEXT NOT NULL,
    done_by TEXT NOT NULL,
    done_ms INTEGER NOT NULL,
    PRIMARY KEY (date, shed_id)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL,
    raw_size INTEGER NOT NULL
);
""" + sqlite_identity.DDL + training_store.DDL  # training_jobs (learning loop)


class ConnectionPool:
    """One SQLite connection per thread, all closed together."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the store is closed")
                conn = self._connect()
                self._all.append(conn)
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit; transactions are opened explicitly with BEGIN
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def create_schema(self) -> int:
        """Migrate and create missing tables; returns the schema version the file had before (0 for a new file)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.get()
        previous = int(conn.execute("PRAGMA user_version").fetchone()[0])
        migrate_count_points(conn)
        if 0 < previous < 4:
            migrate_identity(conn)
        conn.executescript(DDL)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return previous

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def migrate_count_points(conn: sqlite3.Connection) -> bool:
    """Schema 2 -> 3: rebuild a rowid ``count_points`` table as the keyed table of ``COUNT_POINTS_DDL``.

    One transaction (a second worker opening the file meanwhile waits, then finds it done); True when a table
    was rebuilt. A file of 600,000 points takes a few seconds, once.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'count_points'").fetchone()
        rebuild = row is not None and "WITHOUT ROWID" not in row[0].upper()
        if rebuild:
            conn.execute("DROP INDEX IF EXISTS count_points_zone_ts")
            conn.execute("ALTER TABLE count_points RENAME TO count_points_schema2")
            conn.execute(COUNT_POINTS_DDL)
            conn.execute(f"INSERT INTO count_points ({_COUNT_POINT_COLUMNS})"
                         f" SELECT {_COUNT_POINT_COLUMNS} FROM count_points_schema2")
            conn.execute("DROP TABLE count_points_schema2")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return rebuild


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _rebuild(conn: sqlite3.Connection, table: str, ddl: str, insert_select: str) -> None:
    conn.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    conn.execute(ddl)
    conn.execute(insert_select.format(old=f"{table}_old"))
    conn.execute(f"DROP TABLE {table}_old")


def migrate_identity(conn: sqlite3.Connection) -> None:
    """Schema 3 -> 4: events get ``instance`` (from their payload; '' for schema 1.0 events), devices are keyed
    by (site, device), latest counts carry the site of their event. One transaction, like the other migration."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if "instance" not in _columns(conn, "events"):
            conn.execute("ALTER TABLE events ADD COLUMN instance TEXT NOT NULL DEFAULT ''")
            conn.execute("UPDATE events SET instance = json_extract(payload, '$.instance')"
                         " WHERE json_extract(payload, '$.instance') IS NOT NULL")
            conn.execute("DROP INDEX IF EXISTS events_device_ts")
        if "instance" not in _columns(conn, "devices"):
            cols = "device, site, state, last_seen_ms, first_seen_ms, boot, agent_version, status_ts_ms, model," \
                   " cameras, stats"
            _rebuild(conn, "devices", _table_ddl("devices"), f"INSERT INTO devices ({cols}) SELECT {cols} FROM {{old}}")
        if "site" not in _columns(conn, "latest_counts"):
            _rebuild(conn, "latest_counts", _table_ddl("latest_counts"),
                     "INSERT INTO latest_counts (zone_kind, zone_id, site, device, camera, row_key, event_id, ts_ms,"
                     " boot, seq) SELECT o.zone_kind, o.zone_id, coalesce(e.site, d.site, ''), o.device, o.camera,"
                     " o.row_key, o.event_id, o.ts_ms, o.boot, o.seq FROM {old} o"
                     " LEFT JOIN events e ON e.id = o.event_id LEFT JOIN devices d ON d.device = o.device")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _table_ddl(table: str) -> str:
    """The CREATE TABLE statement of ``table`` in ``DDL``."""
    start = DDL.index(f"CREATE TABLE IF NOT EXISTS {table} (")
    return DDL[start:DDL.index(");", start) + 2]


@contextmanager
def setup_lock(db_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<db>.lock`` while a process sets the file up (WAL switch, tables, migrations).

    Several API workers starting together on a new file otherwise collide: switching to WAL and upgrading a
    read to a write fail at once with "database is locked" instead of waiting (SQLite does not wait where
    waiting could deadlock). Workers on one SQLite file share a host (WAL needs shared memory), so a
    ``flock`` serialises them.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
