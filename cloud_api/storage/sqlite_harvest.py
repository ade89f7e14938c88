"""Harvest plans (one stored plan per date, the latest) and per-day done marks in SQLite."""

from __future__ import annotations

import json
import sqlite3

from cloud_api.storage.records import HarvestDoneRecord, HarvestPlanRecord


def get_plan(conn: sqlite3.Connection, date: str) -> HarvestPlanRecord | None:
    row = conn.execute("SELECT date, created_ms, created_by, plan FROM harvest_plans WHERE date = ?", (date,)).fetchone()
    return HarvestPlanRecord(row[0], row[1], row[2], json.loads(row[3])) if row else None


def put_plan(conn: sqlite3.Connection, plan: HarvestPlanRecord, *, replace: bool) -> None:
    """Store a plan; with ``replace=False`` an existing plan for the date wins (first writer wins)."""
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    conn.execute(
        f"{verb} INTO harvest_plans (date, created_ms, created_by, plan) VALUES (?,?,?,?)",
        (plan.date, plan.created_ms, plan.created_by, json.dumps(plan.plan, separators=(",", ":"))),
    )


def mark_done(conn: sqlite3.Connection, mark: HarvestDoneRecord) -> HarvestDoneRecord:
    """Idempotent: marking a shed done twice keeps the first mark."""
    conn.execute(
        "INSERT OR IGNORE INTO harvest_done (date, shed_id, done_by, done_ms) VALUES (?,?,?,?)",
        (mark.date, mark.shed, mark.done_by, mark.done_ms),
    )
    row = conn.execute(
        "SELECT date, shed_id, done_by, done_ms FROM harvest_done WHERE date = ? AND shed_id = ?", (mark.date, mark.shed)
    ).fetchone()
    return HarvestDoneRecord(*row)


def unmark_done(conn: sqlite3.Connection, date: str, shed: str) -> bool:
    return conn.execute("DELETE FROM harvest_done WHERE date = ? AND shed_id = ?", (date, shed)).rowcount == 1


def list_done(conn: sqlite3.Connection, date: str) -> list[HarvestDoneRecord]:
    rows = conn.execute(
        "SELECT date, shed_id, done_by, done_ms FROM harvest_done WHERE date = ? ORDER BY done_ms, shed_id", (date,)
    )
    return [HarvestDoneRecord(*row) for row in rows]
