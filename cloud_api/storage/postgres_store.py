"""PostgreSQL implementation of the ``Store`` protocol: the SQLite store's queries on a psycopg 3 pool.

``PostgresStore`` is ``SqliteStore`` with the connection layer swapped: reads borrow a pooled connection per
statement, writes run in one transaction on one connection, both through ``postgres_dialect.PgConnection``,
so every query module is shared by the two engines. What differs is here:

- event ids are claimed in ``event_ids`` (``INSERT ... ON CONFLICT DO NOTHING``) before the events are
  inserted: exact dedup and id-collision handling across workers (a lost race is resolved again);
- alerts of one dedup key are grouped under a transaction advisory lock (two workers never open it twice);
- events and count points live in time partitions, created ahead and on demand; retention drops them;
- writes wait out a database restart (up to ``reconnect_timeout_s``) and retry a deadlock, so the ingest
  writer does not acknowledge MQTT messages whose write failed;
- committed changes are NOTIFYed, and ``add_remote_change_listener`` gets the ones other workers committed;
- dataset frame images are rows of ``dataset_images`` (``postgres_datasets``), not files on one worker's disk.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo, errors
from psycopg_pool import ConnectionPool

from fieldline.contract import Alert, Event

from cloud_api.storage import (
    postgres_batch,
    postgres_datasets,
    postgres_notify,
    postgres_retention,
    postgres_schema,
    postgres_sheds,
    sqlite_identity,
    sqlite_qa,
    sqlite_retention,
)
from cloud_api.storage.factory import StoreUnavailable
from cloud_api.storage.postgres_dialect import PgConnection, Params, Result, configure
from cloud_api.storage.postgres_partitions import Partitions
from cloud_api.storage.records import StoreChange, UserRecord
from cloud_api.storage.sqlite_datasets import FrameRecord
from cloud_api.storage.sqlite_identity import EventsWritten, Resolved
from cloud_api.storage.sqlite_store import ChangeListener, SqliteStore
from cloud_api.storage.sqlite_users import UserExists

log = logging.getLogger(__name__)

T = TypeVar("T")
_CLAIM_ATTEMPTS = 10


def redact_dsn(dsn: str) -> str:
    """``dsn`` without its password, for messages and logs."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<a DSN that does not parse>"
    parts.pop("password", None)
    host, port, db, user = parts.get("host", "localhost"), parts.get("port", "5432"), parts.get("dbname", ""), \
        parts.get("user", "")
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db}"


def check_dsn(dsn: str) -> None:
    """Raise ``ValueError`` naming what is wrong when ``dsn`` is not a PostgreSQL connection string."""
    example = "expected e.g. postgresql://user:password@host:5432/fieldline"
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).replace(dsn, "<dsn>")
        raise ValueError(f"not a valid PostgreSQL DSN ({reason}); {example}") from None
    port = str(parts.get("port") or "5432")
    if not all(p.strip().isdigit() for p in port.split(",")):
        raise ValueError(f"the port of {redact_dsn(dsn)} is not a number; {example}")


def _rollback(raw: psycopg.Connection) -> None:
    """End a failed write's transaction when the connection still works (the pool gets it back idle)."""
    if not raw.broken and not raw.closed and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            raw.execute("ROLLBACK")
        except psycopg.Error:
            pass


class _Reader:
    """``execute`` for reads: each statement on a connection borrowed from the pool (autocommit)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._trace: Callable[[str], None] | None = None

    def set_trace_callback(self, trace: Callable[[str], None] | None) -> None:
        """Call ``trace`` with every statement read through here (as sqlite3 does; tests see which table answered)."""
        self._trace = trace

    def execute(self, sql: str, params: Params = None) -> Result:
        """Run one read; a pooled connection the server dropped (a restart) fails at once and is discarded, so
        the read is tried again on another one (cheaper than pinging every connection before each use)."""
        attempts = self._pool.max_size + 1
        for attempt in range(1, attempts + 1):
            try:
                with self._pool.connection() as raw:
                    return PgConnection(raw, self._trace).execute(sql, params)
            except psycopg.OperationalError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Result:
        with self._pool.connection() as raw, raw.transaction():
            return PgConnection(raw).executemany(sql, seq_of_params)


class PostgresStore(SqliteStore):
    """Events, counts, devices, alerts, users, QA, climate and fleet tables in one PostgreSQL database."""

    def __init__(self, dsn: str, dead_letter_max_bytes: int = 4096, *, pool_size: int = 10, partition_days: int = 7,
                 reconnect_timeout_s: float = 60.0, connect_timeout_s: float = 10.0) -> None:
        check_dsn(dsn)
        super().__init__(Path("postgres"), dead_letter_max_bytes)
        self._dsn = dsn
        self._pool_size = pool_size
        self._reconnect_timeout_s = reconnect_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._partitions = Partitions(partition_days)
        self._pg: ConnectionPool | None = None
        self._reader: _Reader | None = None
        self._sender = uuid.uuid4().hex[:12]  # this store's name in NOTIFY payloads
        self._remote_listeners: list[ChangeListener] = []
        self._listener: postgres_notify.NotifyListener | None = None
        self.schema_version_found: int | None = None

    @property
    def where(self) -> str:
        return redact_dsn(self._dsn)

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        if self._pg is not None:
            return
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=int(self._connect_timeout_s)) as conn:
                self.schema_version_found = postgres_schema.migrate(conn)
                self._partitions.load(conn)
                self._partitions.ensure_ahead(conn, int(time.time() * 1000))
        except psycopg.OperationalError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(f"cannot use PostgreSQL at {self.where}: {detail}") from None
        pool = ConnectionPool(self._dsn, min_size=1, max_size=self._pool_size, open=False, name="fieldline",
                              kwargs={"autocommit": True, "connect_timeout": int(self._connect_timeout_s)},
                              configure=configure,
                              timeout=self._reconnect_timeout_s, reconnect_timeout=self._reconnect_timeout_s)
        pool.open(wait=True, timeout=self._connect_timeout_s)
        self._pg = pool
        self._reader = _Reader(pool)
        if self._remote_listeners:
            self._start_listener()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._pg is not None:
            self._pg.close()
            self._pg = None
            self._reader = None

    def _conn(self) -> Any:  # a _Reader: sqlite3.Connection's execute/executemany for the query modules
        if self._reader is None:
            raise sqlite3.ProgrammingError("the store is not open")
        return self._reader

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One transaction on one pooled connection; a connection the server dropped fails at BEGIN, before any
        work, and another one is taken."""
        if self._pg is None:
            raise sqlite3.ProgrammingError("the store is not open")
        for attempt in range(self._pool_size + 1):
            with self._pg.connection() as raw:
                transaction = raw.transaction()
                try:
                    transaction.__enter__()  # BEGIN
                except psycopg.OperationalError:
                    if attempt == self._pool_size:
                        raise
                    continue
                try:
                    yield PgConnection(raw)
                except BaseException as exc:
                    transaction.__exit__(type(exc), exc, exc.__traceback__)  # ROLLBACK
                    raise
                transaction.__exit__(None, None, None)  # COMMIT
                return

    def ping(self) -> bool:
        try:
            return self._conn().execute("SELECT 1").fetchone() == (1,)
        except (psycopg.Error, sqlite3.ProgrammingError):
            return False

    def _retry(self, write: Callable[[], T]) -> T:
        """Run a write; retry a deadlock, and wait for the server while it is unreachable (restart, failover)."""
        deadline = time.monotonic() + self._reconnect_timeout_s
        delay = 0.05
        while True:
            try:
                return write()
            except errors.DeadlockDetected:
                log.info("deadlock between workers; retrying the write")
            except errors.CheckViolation as exc:  # a partition dropped by another worker's retention
                if "no partition" not in str(exc):
                    raise
                self._partitions.forget()
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"PostgreSQL at {self.where} unreachable for "
                                           f"{self._reconnect_timeout_s:.0f} s: {exc}") from exc
                log.warning("PostgreSQL at %s: %s; retrying the write in %.2f s", self.where, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _ensure_partitions(self, timestamps: Iterable[int]) -> None:
        assert self._pg is not None
        if self._partitions.all_known(timestamps):
            return
        with self._pg.connection() as raw:
            self._partitions.ensure(raw, timestamps)

    # ------------------------------------------------------------ writes

    def write_events(self, events: list[Event], received_ms: int,
                     payloads: Sequence[bytes | None] | None = None) -> EventsWritten:
        """Store new events (see ``SqliteStore.write_events``); ids are claimed in ``event_ids`` first."""
        if not events:
            return EventsWritten(0)

        def attempt() -> EventsWritten:
            self._ensure_partitions({e.ts_ms for e in events})
            return self._write_events_once(events, received_ms, payloads)

        return self._retry(attempt)

    def _write_events_once(self, events: list[Event], received_ms: int,
                           payloads: Sequence[bytes | None] | None) -> EventsWritten:
        """One transaction, two round trips when the batch is all new (the usual case): BEGIN, the claim of its
        ids and the lookup of its devices' installs; then the rows (``postgres_batch``), NOTIFY and COMMIT.
        A batch with an id already claimed (a redelivery, a collision, another worker's) is resolved as before
        (``_claim``) on the same transaction, from a savepoint taken before the fast claim."""
        assert self._pg is not None
        pairs = list(zip(events, payloads or [None] * len(events), strict=True))
        ids = sorted({e.id for e in events})  # one lock order for workers claiming overlapping batches
        ts_of = {e.id: e.ts_ms for e in reversed(events)}  # the first event's, as the slow path claims it
        keys = postgres_batch.instance_keys(events)
        for attempt in range(self._pool_size + 1):
            with self._pg.connection() as raw:
                sent = False
                try:
                    with raw.pipeline():
                        raw.execute("BEGIN")
                        raw.execute("SAVEPOINT fast_claim")
                        claim = raw.execute(postgres_batch.CLAIM, (ids, [ts_of[i] for i in ids]))
                        known = postgres_batch.queue_known_instances(raw, keys)
                        claimed = claim.fetchall()
                        known_rows = known.fetchall() if known is not None else []
                    sent = True
                    if len(claimed) == len(ids) == len(events):
                        return self._finish_fresh(raw, pairs, keys, known_rows, received_ms)
                    raw.execute("ROLLBACK TO SAVEPOINT fast_claim")
                    return self._finish_resolved(raw, events, payloads, received_ms)
                except psycopg.OperationalError:
                    # a pooled connection the server dropped (a restart) fails at the first round trip, before
                    # any work: take another one at once
                    if sent or not raw.broken or attempt == self._pool_size:
                        _rollback(raw)
                        raise
                except BaseException:
                    _rollback(raw)
                    raise
        raise AssertionError("unreachable")

    def _finish_fresh(self, raw: psycopg.Connection, pairs: list[tuple[Event, bytes | None]],
                      keys: dict[Any, Event], known_rows: list[Any], received_ms: int) -> EventsWritten:
        """Every id of the batch was claimed: insert all, in one pipelined round trip with the COMMIT when no
        inspection or alert needs its own statements."""
        fresh = [e for e, _ in pairs]
        alerts = postgres_batch.new_install_alerts(keys, known_rows)
        inspections = [e for e in fresh if e.kind == "inspection"]
        stored = [StoreChange(e.kind, "stored", e) for e in fresh if e.kind in ("count", "inspection")]
        with raw.pipeline():
            raw.execute("RELEASE SAVEPOINT fast_claim")
            postgres_batch.insert_fresh(raw, pairs, received_ms)
            postgres_batch.upsert_instances(raw, keys, received_ms)
            if not inspections and not alerts:
                self._queue_notify(raw, stored)
                raw.execute("COMMIT")
        changes: list[StoreChange] = []
        if inspections or alerts:
            conn = PgConnection(raw)
            for e in inspections:
                sqlite_qa.insert_inspection(conn, e)  # type: ignore[arg-type]
            changes = self._insert_alerts(conn, alerts, received_ms)[1]
            with raw.pipeline():
                self._queue_notify(raw, stored + changes)
                raw.execute("COMMIT")
        SqliteStore._emit(self, stored)  # noqa: SLF001 - local listeners; the NOTIFY went with the commit
        SqliteStore._emit(self, changes)  # noqa: SLF001
        return EventsWritten(len(fresh))

    def _finish_resolved(self, raw: psycopg.Connection, events: list[Event],
                         payloads: Sequence[bytes | None] | None, received_ms: int) -> EventsWritten:
        """A batch with ids already claimed: split it into new events, repeats and collisions first."""
        conn = PgConnection(raw)
        resolved = self._claim(conn, events, payloads)
        with raw.pipeline():
            postgres_batch.insert_fresh(raw, resolved.fresh, received_ms)
        for e, _ in resolved.fresh:
            if e.kind == "inspection":
                sqlite_qa.insert_inspection(conn, e)  # type: ignore[arg-type]
        alerts = [sqlite_identity.collision_alert(c) for c in resolved.collisions]
        alerts += sqlite_identity.record(conn, resolved, received_ms)  # type: ignore[arg-type]
        changes = self._insert_alerts(conn, alerts, received_ms)[1]
        inserted = [e for e, _ in resolved.fresh]
        stored = [StoreChange(e.kind, "stored", e) for e in inserted if e.kind in ("count", "inspection")]
        with raw.pipeline():
            self._queue_notify(raw, stored + changes)
            raw.execute("COMMIT")
        if resolved.collisions:
            log.warning("%d event id collision(s), stored under derived ids: %s", len(resolved.collisions),
                        ", ".join(f"{c.original_id} -> {c.event.id}" for c in resolved.collisions[:5]))
        SqliteStore._emit(self, stored)  # noqa: SLF001
        SqliteStore._emit(self, changes)  # noqa: SLF001
        return EventsWritten(len(inserted), collisions=len(resolved.collisions), repeats=len(resolved.repeats))

    def _queue_notify(self, raw: psycopg.Connection, changes: list[StoreChange]) -> None:
        """NOTIFY other workers of ``changes`` inside the transaction: delivered when (and only if) it commits."""
        for payload in postgres_notify.payloads(self._sender, changes):
            raw.execute("SELECT pg_notify(%s, %s)", (postgres_notify.CHANNEL, payload))

    @staticmethod
    def _claim(conn: PgConnection, events: list[Event], payloads: Sequence[bytes | None] | None) -> Resolved:
        """Resolve the batch and claim its fresh ids; when another worker claimed one first (its insert waited
        for that worker's commit), resolve again: the stored event is now visible, so the id is a repeat or a
        collision, exactly as if the two batches had come one after the other."""
        for _ in range(_CLAIM_ATTEMPTS):
            conn.raw.execute("SAVEPOINT claim_ids")
            resolved = sqlite_identity.resolve(conn, events, payloads)  # type: ignore[arg-type]
            ids = [e.id for e, _ in resolved.fresh]
            claimed = {r[0] for r in conn.raw.execute(postgres_batch.CLAIM, (ids, [e.ts_ms for e, _ in resolved.fresh]))} \
                if ids else set()
            if len(claimed) == len(ids):
                conn.raw.execute("RELEASE SAVEPOINT claim_ids")
                return resolved
            conn.raw.execute("ROLLBACK TO SAVEPOINT claim_ids")
        lost = sorted(set(ids) - claimed)[:5]
        raise RuntimeError(f"event ids {lost} are in event_ids but not in events: the tables disagree "
                           "(restore event_ids from events)")

    def _insert_alerts(self, conn: Any, alerts: list[Alert], received_ms: int) -> tuple[int, list[StoreChange]]:
        keys = sorted({a.dedup_key for a in alerts})
        if keys:  # one open alert per dedup key: serialise the workers grouping the same key
            conn.raw.execute("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 42) AS h"
                             " FROM unnest(%s::text[]) AS k ORDER BY h) AS keys", (keys,))
        return super()._insert_alerts(conn, alerts, received_ms)

    def write_status(self, status: Any, received_ms: int) -> bool:
        return self._retry(lambda: super(PostgresStore, self).write_status(status, received_ms))

    def write_alerts(self, alerts: list[Alert], received_ms: int) -> int:
        return self._retry(lambda: super(PostgresStore, self).write_alerts(alerts, received_ms))

    def write_stats(self, stats: Any, received_ms: int) -> None:
        self._retry(lambda: super(PostgresStore, self).write_stats(stats, received_ms))

    def write_snapshot(self, site: str, device: str, event_id: str, jpeg: bytes, received_ms: int) -> None:
        self._retry(lambda: super(PostgresStore, self).write_snapshot(site, device, event_id, jpeg, received_ms))

    def write_telemetry(self, readings: Any, received_ms: int) -> int:
        return self._retry(lambda: super(PostgresStore, self).write_telemetry(readings, received_ms))

    def write_dead_letters(self, letters: Any, received_ms: int) -> None:
        self._retry(lambda: super(PostgresStore, self).write_dead_letters(letters, received_ms))

    def write_command_reply(self, site: str, device: str, name: str, reply: Any, received_ms: int) -> bool:
        return self._retry(lambda: super(PostgresStore, self).write_command_reply(site, device, name, reply,
                                                                                   received_ms))

    def create_user(self, user: UserRecord) -> None:
        """Raises ``UserExists`` when the name is taken."""
        try:
            super().create_user(user)
        except errors.UniqueViolation:
            raise UserExists(user.username) from None

    def apply_retention(self, policy: sqlite_retention.RetentionPolicy,
                        now_ms: int) -> sqlite_retention.RetentionResult:
        """Drop expired partitions (keeping latest counts), trim the boundary one, create the next ones."""
        if self._pg is None:
            raise sqlite3.ProgrammingError("the store is not open")
        with self._pg.connection() as raw:
            result = postgres_retention.apply(PgConnection(raw), self._partitions, policy, now_ms)
            self._partitions.ensure_ahead(raw, now_ms)
        return result

    # ------------------------------------------------------------ shed overview

    def shed_counts_at(self, at_ms: int, lookback_ms: int) -> dict[str, dict[str, int]]:
        return self._read(lambda raw: postgres_sheds.counts_at(raw, at_ms, lookback_ms))

    def latest_counts(self, shed_id: str | None = None) -> list[Any]:
        return self._read(lambda raw: postgres_sheds.latest_counts(raw, shed_id))

    def _read(self, query: Callable[[psycopg.Connection], T]) -> T:
        """Run a read on a pooled connection; one the server dropped is discarded and the read tried again."""
        if self._pg is None:
            raise sqlite3.ProgrammingError("the store is not open")
        attempts = self._pool_size + 1
        for attempt in range(1, attempts + 1):
            try:
                with self._pg.connection() as raw:
                    return query(raw)
            except psycopg.OperationalError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ datasets

    @property
    def datasets_dir(self) -> Path:
        raise AttributeError("the PostgreSQL store keeps frame images in the dataset_images table, not a folder")

    def _put_image(self, jpeg: bytes) -> str:
        return self._retry(lambda: postgres_datasets.put_image(self._conn(), jpeg, int(time.time() * 1000)))

    def frame_jpeg(self, record: FrameRecord) -> bytes | None:
        return postgres_datasets.get_image(self._conn(), record.image_sha256)

    def _lock_dataset(self, conn: Any, name: str) -> None:
        postgres_datasets.lock_dataset(conn, name)

    # ------------------------------------------------------------ live feed across workers

    def _emit(self, changes: list[StoreChange]) -> None:
        super()._emit(changes)
        if not changes or self._pg is None:
            return
        try:
            with self._pg.connection() as raw:
                for payload in postgres_notify.payloads(self._sender, changes):
                    raw.execute("SELECT pg_notify(%s, %s)", (postgres_notify.CHANNEL, payload))
        except psycopg.Error as exc:  # the write is committed; only other workers' live feeds miss it
            log.warning("could not NOTIFY %d change(s) to other workers: %s", len(changes), exc)

    def add_remote_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` (in the LISTEN thread) for every change another worker commits from now on."""
        self._remote_listeners.append(listener)
        if self._pg is not None and self._listener is None:
            self._start_listener()

    def wait_listening(self, timeout: float) -> bool:
        """True once the LISTEN connection is up (tests start publishing after it)."""
        return self._listener is not None and self._listener.listening.wait(timeout)

    def _start_listener(self) -> None:
        self._listener = postgres_notify.NotifyListener(self._dsn, self._sender, self._replay)
        self._listener.start()

    def _replay(self, message: dict[str, Any]) -> None:
        """Rebuild the changes a notification refers to and give them to the remote listeners."""
        refs = message.get("c") or []
        event_ids = [r[2] for r in refs if r[0] == "e"]
        stored: dict[str, str] = {}
        if event_ids:
            rows = self._conn().execute("SELECT id, payload FROM events WHERE id = ANY(?)", (event_ids,)).fetchall()
            stored = {row[0]: row[1] for row in rows}
        changes: list[StoreChange] = []
        for ref in refs:
            if ref[0] == "e" and ref[2] in stored:
                changes.append(StoreChange(ref[1], "stored", Event.model_validate(json.loads(stored[ref[2]]))))
            elif ref[0] == "a":
                record = self.get_alert(int(ref[2]))
                if record is not None:
                    changes.append(StoreChange("alert", ref[1], record))
            elif ref[0] == "d":
                device = self.get_device(ref[1], ref[2])
                if device is not None:
                    changes.append(StoreChange("device", "status", device))
        for change in changes:
            for listener in self._remote_listeners:
                try:
                    listener(change)
                except Exception:  # noqa: BLE001 - a broken listener must not stop the feed
                    self.listener_errors += 1
                    log.exception("remote change listener failed on a %s change", change.kind)
