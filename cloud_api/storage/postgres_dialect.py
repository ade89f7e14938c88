"""Run the SQLite store's queries on PostgreSQL: a small SQL dialect translation and a connection adapter.

The query modules (``sqlite_alerts``, ``sqlite_qa``, ``sqlite_fleet``, ...) take a connection and call
``execute`` / ``executemany`` with SQLite SQL. ``PgConnection`` gives them the same calls on a psycopg 3
connection, translating each statement once (cached):

- ``?`` and ``:name`` placeholders -> ``%s`` and ``%(name)s``; ``INSERT OR IGNORE`` -> ``ON CONFLICT DO NOTHING``;
  ``INSERT OR REPLACE`` -> an upsert on the table's primary key;
- scalar ``max(a, b)`` / ``min(a, b)`` -> ``greatest`` / ``least``; ``json_extract(col, '$.key')`` -> ``->>``;
  ``group_concat`` / ``char`` -> ``string_agg`` / ``chr``; ``IS ?`` -> ``IS NOT DISTINCT FROM``; an integer
  used as a condition (``CASE WHEN ?``) compared with 0; sub-queries in FROM get the alias PostgreSQL 15 wants;
- ``json_each(col)`` over a JSON array -> ``jsonb_array_elements(col::jsonb)`` (its rows' ``value`` as in SQLite);
- an INSERT into a table with a generated id returns it (``lastrowid``).

So there is one set of queries for both engines, and the store test suite runs on both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg.types.numeric import Int8Dumper

# tables with a generated ``id``: a single-row INSERT returns it as ``lastrowid``
GENERATED_ID_TABLES = frozenset({
    "alert_lifecycle", "dead_letters", "id_collisions", "fleet_audit", "fleet_deployment_history",
})

_INSERT_OR = re.compile(r"^\s*INSERT OR (IGNORE|REPLACE) INTO (\w+)\s*\(([^)]*)\)", re.IGNORECASE)
_INSERT_INTO = re.compile(r"^\s*INSERT INTO (\w+)", re.IGNORECASE)
_SCALAR_MAX_MIN = re.compile(r"\b(max|min)\(([^(),]+),([^(),]+)\)", re.IGNORECASE)
_JSON_EXTRACT = re.compile(r"json_extract\(([\w.]+),\s*'\$\.(\w+)'\)", re.IGNORECASE)
_JSON_EACH = re.compile(r"\bjson_each\(([\w.]+)\)", re.IGNORECASE)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_FROM_SUBQUERY = re.compile(r"\bFROM\s*\(", re.IGNORECASE)
_ALIAS_AFTER = re.compile(r"\s*(AS\s+)?(?!(WHERE|ORDER|GROUP|LIMIT|UNION|JOIN|LEFT|ON|HAVING)\b)[A-Za-z_]\w*",
                          re.IGNORECASE)


def _alias_subqueries(sql: str) -> str:
    """Give every ``FROM (sub-query)`` without an alias one (PostgreSQL before 16 requires it)."""
    out, pos, n = [], 0, 0
    for match in _FROM_SUBQUERY.finditer(sql):
        if match.start() < pos:
            continue  # inside a sub-query already handled
        depth, close = 1, match.end()
        while close < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[close], 0)
            close += 1
        out.append(sql[pos:match.end()] + _alias_subqueries(sql[match.end():close - 1]) + ")")
        pos = close
        if not _ALIAS_AFTER.match(sql, pos):
            n += 1
            out.append(f" AS _sub{n}")
    out.append(sql[pos:])
    return "".join(out)


@lru_cache(maxsize=2048)
def translate(sql: str, named: bool, returning_id: bool = False) -> str:
    """SQLite SQL -> PostgreSQL SQL for psycopg (see the module docstring)."""
    text = sql.replace("%", "%%")
    if text.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    suffix = ""
    insert_or = _INSERT_OR.match(text)
    if insert_or is not None:
        verb, table, columns = insert_or.group(1).upper(), insert_or.group(2), insert_or.group(3)
        text = f"INSERT INTO {table} ({columns})" + text[insert_or.end():]
        if verb == "IGNORE":
            suffix = " ON CONFLICT DO NOTHING"
        else:
            # the primary key (PostgreSQL names it <table>_pkey), as SQLite's REPLACE does on it
            suffix = (f" ON CONFLICT ON CONSTRAINT {table}_pkey DO UPDATE SET "
                      + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in columns.split(",") if c.strip()))
    text = _SCALAR_MAX_MIN.sub(lambda m: f"{'greatest' if m.group(1).lower() == 'max' else 'least'}"
                                         f"({m.group(2)},{m.group(3)})", text)
    text = _JSON_EXTRACT.sub(r"(\1::jsonb ->> '\2')", text)
    text = _JSON_EACH.sub(r"jsonb_array_elements(\1::jsonb)", text)
    text = re.sub(r"\bgroup_concat\(", "string_agg(", text, flags=re.IGNORECASE)
    text = re.sub(r"\bchar\((\d+)\)", r"chr(\1)", text, flags=re.IGNORECASE)
    text = re.sub(r"\bIS NOT \?", "IS DISTINCT FROM ?", text)
    text = re.sub(r"\bIS \?", "IS NOT DISTINCT FROM ?", text)
    text = re.sub(r"\bCASE WHEN \? THEN", "CASE WHEN ? <> 0 THEN", text)
    text = _alias_subqueries(text)
    text = _NAMED.sub(r"%(\1)s", text) if named else text.replace("?", "%s")
    text = text.rstrip().rstrip(";") + suffix
    if returning_id:
        text += " RETURNING id"
    return text


class NumericLoader(Loader):
    """``sum()`` of a bigint is a numeric in PostgreSQL: load whole numbers as int (as SQLite returns them)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode("ascii")
        if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
            value = float(text)
            return int(value) if value.is_integer() else value
        return int(text)


def configure(conn: psycopg.Connection) -> None:
    """Adapters every store connection uses: Python ints as bigint, numeric results as int/float."""
    conn.adapters.register_dumper(int, Int8Dumper)
    conn.adapters.register_loader("numeric", NumericLoader)


class Result:
    """What ``execute`` returns: the rows (fetched at once), ``rowcount`` and ``lastrowid``, like sqlite3's cursor."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int, lastrowid: int | None = None) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._at = self._rows[self._at:], len(self._rows)
        return rows

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._rows[self._at:self._at + size]
        self._at += len(rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row


Params = Sequence[Any] | Mapping[str, Any] | None


class PgConnection:
    """sqlite3-style ``execute`` / ``executemany`` on a psycopg connection (see the module docstring)."""

    def __init__(self, conn: psycopg.Connection, trace: Callable[[str], None] | None = None) -> None:
        self.raw = conn
        self._trace = trace  # called with each statement run (like sqlite3's set_trace_callback)

    def execute(self, sql: str, params: Params = None) -> Result:
        named = isinstance(params, Mapping)
        insert = _INSERT_INTO.match(sql)
        returning = bool(insert and insert.group(1) in GENERATED_ID_TABLES and "RETURNING" not in sql.upper())
        statement = translate(sql, named, returning)
        if self._trace is not None:
            self._trace(statement)
        with self.raw.cursor() as cur:
            cur.execute(statement, params if params else None)  # type: ignore[arg-type]
            rows = cur.fetchall() if cur.description is not None else []
            lastrowid = int(rows[0][0]) if returning and rows else None
            return Result([] if returning else rows, cur.rowcount, lastrowid)

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> Result:
        params = list(seq_of_params)
        if not params:
            return Result([], 0)
        with self.raw.cursor() as cur:
            cur.executemany(translate(sql, isinstance(params[0], Mapping)), params)  # type: ignore[arg-type]
            return Result([], cur.rowcount)
