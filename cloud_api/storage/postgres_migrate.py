"""Move a farm's SQLite database into PostgreSQL (``fieldline api migrate``), with a count check at the end.

Both stores are opened first, so each is at its current schema. Every table of the PostgreSQL schema that the
SQLite file has is copied with ``COPY`` (columns both have), in schema order (users before tokens), in one
transaction: a failure leaves the target as it was. ``event_ids`` is filled from the events; the partitions
the events need are created first; generated ids continue after the copied ones. The target must be empty.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cloud_api.storage import postgres_schema
from cloud_api.storage.postgres_partitions import Partitions
from cloud_api.storage.postgres_store import PostgresStore, redact_dsn
from cloud_api.storage.sqlite_store import SqliteStore

_CHUNK = 5000


class MigrationError(RuntimeError):
    """The migration cannot start or did not copy every row (the message says which table)."""


@dataclass(frozen=True)
class TableCount:
    table: str
    sqlite: int
    postgres: int

    @property
    def ok(self) -> bool:
        return self.sqlite == self.postgres


def _tables() -> list[str]:
    """Tables of the PostgreSQL schema in creation order (``event_ids`` is derived, not copied)."""
    names = []
    for statement in postgres_schema.all_ddl():
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement)
        if match and match.group(1) != "event_ids":
            names.append(match.group(1))
    return names


def _columns_sqlite(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _columns_pg(conn: psycopg.Connection, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
        " AND table_schema = current_schema() ORDER BY ordinal_position", (table,))]


def migrate(sqlite_path: Path, dsn: str, progress: Callable[[str, int], None] | None = None,
            partition_days: int = 7) -> list[TableCount]:
    """Copy every table from ``sqlite_path`` into the (empty) database at ``dsn``; returns the counts per table.

    Raises ``MigrationError`` when the SQLite file is missing, the target already holds data, or a count
    differs after the copy (then nothing is committed).
    """
    if not Path(sqlite_path).is_file():
        raise MigrationError(f"{sqlite_path}: no such SQLite database")
    source_store, target_store = SqliteStore(Path(sqlite_path)), PostgresStore(dsn, partition_days=partition_days)
    source_store.open()  # brings an older file to the current schema
    target_store.open()  # creates or migrates the PostgreSQL schema
    source_store.close()
    target_store.close()
    tables = _tables()
    source = sqlite3.connect(sqlite_path)
    try:
        with psycopg.connect(dsn) as target:
            busy = [t for t in tables if target.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]  # type: ignore[arg-type]
            if busy:
                raise MigrationError(f"{redact_dsn(dsn)} already holds data (tables {', '.join(busy[:5])}): "
                                     "migrate into an empty database")
            _make_partitions(source, target, Partitions(partition_days))
            counts = [_copy_table(source, target, table, progress) for table in tables]
            target.execute("INSERT INTO event_ids (id, ts_ms) SELECT id, ts_ms FROM events")
            _continue_identities(target, tables)
            bad = [c for c in counts if not c.ok]
            if bad:
                target.rollback()
                raise MigrationError("count check failed, nothing committed: " + ", ".join(
                    f"{c.table} {c.sqlite} in SQLite, {c.postgres} in PostgreSQL" for c in bad))
            target.commit()
            target.autocommit = True
            target.execute("ANALYZE")  # planner statistics for the copied tables, before the API's first query
        return counts
    finally:
        source.close()


def _make_partitions(source: sqlite3.Connection, target: psycopg.Connection, partitions: Partitions) -> None:
    span = partitions.span_ms
    starts = [row[0] for row in source.execute(f"SELECT DISTINCT ts_ms / {span} FROM events")]
    timestamps = [s * span for s in starts] + [s * span + span - 1 for s in starts]
    partitions.load(target)
    target.commit()
    target.autocommit = True
    try:
        partitions.ensure(target, timestamps)
    finally:
        target.autocommit = False


def _copy_table(source: sqlite3.Connection, target: psycopg.Connection, table: str,
                progress: Callable[[str, int], None] | None) -> TableCount:
    have = _columns_sqlite(source, table)
    if not have:  # a table the SQLite file does not have (a module it never opened)
        return TableCount(table, 0, 0)
    columns = [c for c in _columns_pg(target, table) if c in have]
    listed = ", ".join(columns)
    copied = 0
    rows = source.execute(f"SELECT {listed} FROM {table}")
    with target.cursor() as cur, cur.copy(f"COPY {table} ({listed}) FROM STDIN") as copy:  # type: ignore[arg-type]
        while batch := rows.fetchmany(_CHUNK):
            for row in batch:
                copy.write_row(row)
            copied += len(batch)
            if progress is not None:
                progress(table, copied)
    in_sqlite = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    in_pg = target.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[arg-type,index]
    return TableCount(table, int(in_sqlite), int(in_pg))


def _continue_identities(target: psycopg.Connection, tables: list[str]) -> None:
    """Generated ids go on after the largest copied id."""
    for table in tables:
        if "id" not in _columns_pg(target, table):
            continue
        sequence = target.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        if sequence is not None and sequence[0] is not None:
            target.execute(f"SELECT setval(%s, coalesce((SELECT max(id) FROM {table}), 0) + 1, false)",  # type: ignore[arg-type]
                           (sequence[0],))
