"""``fieldline api migrate --from sqlite:PATH --to postgres:DSN``: every table moves, the reads answer the same,
the count check passes, and a target that already holds data is refused."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.records import AlertQuery, EventQuery, HarvestPlanRecord, NewDeadLetter, TokenRecord, UserRecord
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.cli import app
from tests.cloud_api.cloudapi_builders import SITE, T0, alert, count_event, device_status
from tests.cloud_api.qa_builders import inspection

DAY = 86_400_000


def farm(path: Path) -> SqliteStore:
    """A SQLite store with something in most tables, over several weeks (several partitions)."""
    store = SqliteStore(path)
    store.open()
    store.write_events([count_event(f"shed-{i % 3}", T0 - (i % 5) * 9 * DAY + i, {"ripe": i, "green": 1}, seq=i)
                        for i in range(1, 121)], T0)
    store.write_events([inspection("line-1", T0 + i, "reject" if i % 4 == 0 else "pass", seq=i,
                                   defects=[("scratch", 0.9, (0.1, 0.2, 0.3, 0.4))]) for i in range(1, 41)], T0)
    store.write_alerts([alert("k1", ts_ms=T0), alert("k1", ts_ms=T0 + 5), alert("k2", ts_ms=T0 + 9)], T0)
    store.write_status(device_status("online", boot=3), T0)
    store.write_dead_letters([NewDeadLetter("t/x", "payload is not JSON", b"nope")], T0)
    store.create_user(UserRecord("olga", "operator", "hash", T0))
    store.add_token(TokenRecord("ab" * 32, "olga", T0, None, None), T0)
    store.put_harvest_plan(HarvestPlanRecord("2026-01-05", T0, "olga", {"sheds": ["shed-1"]}), replace=True)
    store.write_snapshot(SITE, "edge-1", "edge-1-0-1", b"\xff\xd8jpeg", T0)
    return store


def test_migrate_copies_every_table_and_the_reads_match(tmp_path: Path, fresh_postgres_dsn: str) -> None:
    source = farm(tmp_path / "farm.db")
    result = CliRunner().invoke(app, ["api", "migrate", "--from", f"sqlite:{tmp_path / 'farm.db'}",
                                      "--to", f"postgres:{fresh_postgres_dsn}"])
    assert result.exit_code == 0, result.output
    assert "count check passed" in result.output
    assert "events" in result.output and "inspections" in result.output
    target = PostgresStore(fresh_postgres_dsn)
    target.open()
    assert target.list_events(EventQuery(limit=500)) == source.list_events(EventQuery(limit=500))
    assert target.list_sheds() == source.list_sheds()
    assert target.shed_count_buckets("shed-1", T0 - 50 * DAY, T0 + DAY, DAY) == \
        source.shed_count_buckets("shed-1", T0 - 50 * DAY, T0 + DAY, DAY)
    assert target.list_alerts(AlertQuery(limit=10)) == source.list_alerts(AlertQuery(limit=10))
    assert target.qa_totals("line-1", T0, T0 + DAY) == source.qa_totals("line-1", T0, T0 + DAY)
    assert target.qa_lines(T0, T0 + DAY) == source.qa_lines(T0, T0 + DAY)
    assert target.qa_buckets(None, T0, T0 + DAY, 3_600_000, 7_200_000) == \
        source.qa_buckets(None, T0, T0 + DAY, 3_600_000, 7_200_000)
    assert target.qa_defect_classes("line-1", T0, T0 + DAY) == source.qa_defect_classes("line-1", T0, T0 + DAY)
    assert target.qa_rejects("line-1", 5, (T0 + 30, "~")) == source.qa_rejects("line-1", 5, (T0 + 30, "~"))
    assert list(target.qa_inspections(None, T0, T0 + DAY, chunk=7)) == \
        list(source.qa_inspections(None, T0, T0 + DAY, chunk=7))
    assert target.latest_snapshot("shed-1") == source.latest_snapshot("shed-1")
    assert target.shed_counts_at(T0, 30 * DAY) == source.shed_counts_at(T0, 30 * DAY)
    assert target.open_alerts_by_shed() == source.open_alerts_by_shed()
    assert target.alert_summary() == source.alert_summary()
    assert target.device_audit(SITE, "edge-1") == source.device_audit(SITE, "edge-1")
    assert target.token_owner("ab" * 32, T0) == source.token_owner("ab" * 32, T0)
    assert target.get_snapshot("edge-1-0-1") == b"\xff\xd8jpeg"
    assert target.get_harvest_plan("2026-01-05") == source.get_harvest_plan("2026-01-05")
    # the copied data behaves: a resend is still a duplicate, new alerts get new ids after the copied ones
    resend = count_event("shed-1", T0 - 9 * DAY + 1, {"ripe": 1, "green": 1}, seq=1)
    assert target.write_events([resend], T0) == 0
    target.write_alerts([alert("k3", ts_ms=T0 + 20)], T0)
    assert max(a.id for a in target.list_alerts(AlertQuery(limit=10))) == 3
    target.close()
    source.close()

    again = CliRunner().invoke(app, ["api", "migrate", "--from", f"sqlite:{tmp_path / 'farm.db'}",
                                     "--to", f"postgres:{fresh_postgres_dsn}"])
    assert again.exit_code != 0 and "already holds data" in again.output


def test_migrate_names_bad_arguments(tmp_path: Path) -> None:
    runner = CliRunner()
    wrong_scheme = runner.invoke(app, ["api", "migrate", "--from", "mysql:x", "--to", "postgres:postgresql://h/db"])
    assert wrong_scheme.exit_code != 0 and "expected sqlite:PATH" in wrong_scheme.output
    missing = runner.invoke(app, ["api", "migrate", "--from", f"sqlite:{tmp_path / 'none.db'}",
                                  "--to", "postgres:postgresql://u:pw@127.0.0.1:1/db"])
    assert missing.exit_code != 0 and "no such SQLite database" in missing.output
