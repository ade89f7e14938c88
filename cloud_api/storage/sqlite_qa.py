"""Factory QA tables, filled at write time from inspection events, and their reads (mixed into SqliteStore).

``inspections`` holds one narrow row per part (inspection event of a ``line`` zone) so the dashboard's
counts, trend and p-chart are covering-index range scans instead of JSON parsing of stored payloads;
``reject_defects`` holds the detections of rejected parts (the defects) for the Pareto and the gallery;
``qa_lines`` holds every line ever seen with its site and newest inspection.

The tables are created next to the main schema (``CREATE ... IF NOT EXISTS``); a database written before
they existed is backfilled once from the stored event payloads when the ``inspections`` table is created.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager

from fieldline.contract import Event

from cloud_api.storage.qa_records import (
    DefectClassCount,
    DefectRecord,
    InspectionBucket,
    InspectionRow,
    InspectionTotals,
    LineRecord,
    RejectRecord,
)

QA_DDL = """
CREATE TABLE IF NOT EXISTS inspections (
    event_id TEXT PRIMARY KEY,
    line TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    camera TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    reject INTEGER NOT NULL CHECK (reject IN (0, 1)),
    snapshot TEXT
);
-- covering indexes for counts / buckets per line and over all lines
CREATE INDEX IF NOT EXISTS inspections_line_ts ON inspections (line, ts_ms, reject);
CREATE INDEX IF NOT EXISTS inspections_ts ON inspections (ts_ms, line, reject);
-- the reject gallery, newest first, without walking the passed parts
CREATE INDEX IF NOT EXISTS inspections_line_rejects ON inspections (line, ts_ms, event_id) WHERE reject = 1;
CREATE INDEX IF NOT EXISTS inspections_rejects ON inspections (ts_ms, event_id) WHERE reject = 1;

CREATE TABLE IF NOT EXISTS reject_defects (
    event_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    line TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    PRIMARY KEY (event_id, idx)
);
CREATE INDEX IF NOT EXISTS reject_defects_line_ts ON reject_defects (line, ts_ms, label, event_id);
CREATE INDEX IF NOT EXISTS reject_defects_ts ON reject_defects (ts_ms, label, event_id);

CREATE TABLE IF NOT EXISTS qa_lines (
    line TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    first_ts_ms INTEGER NOT NULL,
    last_ts_ms INTEGER NOT NULL
);
"""

_BACKFILL_BATCH = 2000


def is_inspection(event: Event) -> bool:
    return event.kind == "inspection" and event.zone.kind == "line" and event.verdict is not None


def ensure_schema(conn: sqlite3.Connection) -> int:
    """Create the QA tables; backfill them from stored events when they are new. Returns rows backfilled."""
    existed = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inspections'"
    ).fetchone() is not None
    conn.executescript(QA_DDL)
    if existed:
        return 0
    backfilled = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute("SELECT payload FROM events WHERE kind = 'inspection' AND zone_kind = 'line'")
        while batch := cursor.fetchmany(_BACKFILL_BATCH):
            for (payload,) in batch:
                event = Event.model_validate_json(payload)
                if is_inspection(event):
                    insert_inspection(conn, event)
                    backfilled += 1
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return backfilled


def insert_inspection(conn: sqlite3.Connection, event: Event) -> None:
    """Index one newly stored inspection event (call inside the transaction that stored it)."""
    if not is_inspection(event):
        return
    line = event.zone.id
    reject = event.verdict == "reject"
    conn.execute(
        "INSERT OR IGNORE INTO inspections (event_id, line, site, device, camera, ts_ms, reject, snapshot)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (event.id, line, event.site, event.device, event.camera, event.ts_ms, int(reject), event.snapshot),
    )
    if reject and event.detections:
        conn.executemany(
            "INSERT OR IGNORE INTO reject_defects (event_id, idx, line, ts_ms, label, score, x1, y1, x2, y2)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (event.id, i, line, event.ts_ms, d.label, d.score, *d.box)
                for i, d in enumerate(event.detections)
            ],
        )
    conn.execute(
        "INSERT INTO qa_lines (line, site, first_ts_ms, last_ts_ms) VALUES (?,?,?,?)"
        " ON CONFLICT (line) DO UPDATE SET"
        " site = CASE WHEN excluded.last_ts_ms >= qa_lines.last_ts_ms THEN excluded.site ELSE qa_lines.site END,"
        " first_ts_ms = min(qa_lines.first_ts_ms, excluded.first_ts_ms),"
        " last_ts_ms = max(qa_lines.last_ts_ms, excluded.last_ts_ms)",
        (line, event.site, event.ts_ms, event.ts_ms),
    )


def _line_filter(line: str | None, alias: str = "") -> tuple[str, dict[str, str]]:
    if line is None:
        return "", {}
    return f" AND {alias}line = :line", {"line": line}


# The snapshot of an event: the one its ``snapshot`` field names, else one published under its own id;
# only ids whose JPEG is stored are returned, so the client never asks for a missing image.
_SNAPSHOT_SQL = (
    "CASE WHEN i.snapshot IS NOT NULL AND EXISTS (SELECT 1 FROM snapshots s WHERE s.event_id = i.snapshot)"
    " THEN i.snapshot"
    " WHEN EXISTS (SELECT 1 FROM snapshots s WHERE s.event_id = i.event_id) THEN i.event_id END"
)


class QaMixin:
    """QA reads; needs ``_conn()`` from the class it is mixed into (``SqliteStore``)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def qa_lines(self, from_ms: int, to_ms: int) -> list[LineRecord]:
        conn = self._conn()
        window = {
            line: (int(parts), int(rejects or 0))
            for line, parts, rejects in conn.execute(
                "SELECT line, count(*), sum(reject) FROM inspections"
                " WHERE ts_ms >= :from AND ts_ms < :to GROUP BY line",
                {"from": from_ms, "to": to_ms},
            )
        }
        return [
            LineRecord(id=line, site=site, parts=window.get(line, (0, 0))[0], rejects=window.get(line, (0, 0))[1],
                       last_ts_ms=int(last_ts))
            for line, site, last_ts in conn.execute("SELECT line, site, last_ts_ms FROM qa_lines")
        ]

    def qa_line_exists(self, line: str) -> bool:
        return self._conn().execute("SELECT 1 FROM qa_lines WHERE line = ?", (line,)).fetchone() is not None

    def qa_totals(self, line: str | None, from_ms: int, to_ms: int) -> InspectionTotals:
        where, params = _line_filter(line)
        parts, rejects = self._conn().execute(
            f"SELECT count(*), coalesce(sum(reject), 0) FROM inspections WHERE ts_ms >= :from AND ts_ms < :to{where}",
            {"from": from_ms, "to": to_ms, **params},
        ).fetchone()
        return InspectionTotals(parts=int(parts), rejects=int(rejects))

    def qa_buckets(self, line: str | None, from_ms: int, to_ms: int, bucket_ms: int,
                   offset_ms: int = 0) -> list[InspectionBucket]:
        """Buckets start where (ts_ms + offset_ms) is a multiple of bucket_ms (offset: the site's UTC offset)."""
        where, params = _line_filter(line)
        shift = offset_ms % bucket_ms  # in [0, bucket): keeps the dividend non-negative
        rows = self._conn().execute(
            "SELECT ((ts_ms + :shift) / :bucket) * :bucket - :shift AS bucket_ts, count(*), sum(reject)"
            f" FROM inspections WHERE ts_ms >= :from AND ts_ms < :to{where} GROUP BY bucket_ts ORDER BY bucket_ts",
            {"from": from_ms, "to": to_ms, "bucket": bucket_ms, "shift": shift, **params},
        ).fetchall()
        return [InspectionBucket(ts_ms=int(t), parts=int(n), rejects=int(d)) for t, n, d in rows]

    def qa_defect_classes(self, line: str | None, from_ms: int, to_ms: int) -> list[DefectClassCount]:
        where, params = _line_filter(line)
        rows = self._conn().execute(
            "SELECT label, count(*), count(DISTINCT event_id) FROM reject_defects"
            f" WHERE ts_ms >= :from AND ts_ms < :to{where} GROUP BY label",
            {"from": from_ms, "to": to_ms, **params},
        ).fetchall()
        return [DefectClassCount(label=label, count=int(n), parts=int(p)) for label, n, p in rows]

    def qa_rejects(self, line: str | None, limit: int, before: tuple[int, str] | None) -> list[RejectRecord]:
        conn = self._conn()
        where, params = _line_filter(line, "i.")
        if before is not None:
            where += " AND (i.ts_ms, i.event_id) < (:before_ts, :before_id)"
            params = {**params, "before_ts": before[0], "before_id": before[1]}  # type: ignore[dict-item]
        rows = conn.execute(
            f"SELECT i.event_id, i.ts_ms, i.line, i.site, i.device, i.camera, {_SNAPSHOT_SQL} FROM inspections i"
            f" WHERE i.reject = 1{where} ORDER BY i.ts_ms DESC, i.event_id DESC LIMIT :limit",
            {**params, "limit": limit},
        ).fetchall()
        defects: dict[str, list[DefectRecord]] = {row[0]: [] for row in rows}
        if defects:
            marks = ",".join("?" * len(defects))
            for event_id, label, score, x1, y1, x2, y2 in conn.execute(
                f"SELECT event_id, label, score, x1, y1, x2, y2 FROM reject_defects WHERE event_id IN ({marks})"
                " ORDER BY event_id, idx",
                list(defects),
            ):
                defects[event_id].append(DefectRecord(label=label, score=float(score), box=(x1, y1, x2, y2)))
        return [
            RejectRecord(event_id=r[0], ts_ms=int(r[1]), line=r[2], site=r[3], device=r[4], camera=r[5],
                         snapshot=r[6], defects=defects[r[0]])
            for r in rows
        ]

    def qa_inspections(self, line: str | None, from_ms: int, to_ms: int, chunk: int = 5000) -> Iterator[InspectionRow]:
        """Every inspection in the window, oldest first, fetched in keyset-paginated chunks.

        Each chunk is its own query on the calling thread's connection, so a streaming response may pull
        chunks from different threads safely.
        """
        where, params = _line_filter(line, "i.")
        after: tuple[int, str] = (from_ms - 1, "")
        while True:
            rows = self._conn().execute(
                "SELECT i.event_id, i.ts_ms, i.line, i.site, i.device, i.camera, i.reject, i.snapshot,"
                " (SELECT group_concat(d.label || char(31) || d.score, char(30)) FROM"
                "   (SELECT label, score FROM reject_defects WHERE event_id = i.event_id ORDER BY idx) d)"
                f" FROM inspections i WHERE i.ts_ms >= :from AND i.ts_ms < :to{where}"
                " AND (i.ts_ms, i.event_id) > (:after_ts, :after_id)"
                " ORDER BY i.ts_ms, i.event_id LIMIT :chunk",
                {**params, "from": from_ms, "to": to_ms, "after_ts": after[0], "after_id": after[1], "chunk": chunk},
            ).fetchall()
            for event_id, ts_ms, line_id, site, device, camera, reject, snapshot, packed in rows:
                defects = []
                if packed:
                    for item in packed.split("\x1e"):
                        label, _, score = item.rpartition("\x1f")
                        defects.append((label, float(score)))
                yield InspectionRow(
                    event_id=event_id, ts_ms=int(ts_ms), line=line_id, site=site, device=device, camera=camera,
                    verdict="reject" if reject else "pass", defects=defects, snapshot=snapshot,
                )
            if len(rows) < chunk:
                return
            after = (int(rows[-1][1]), rows[-1][0])
