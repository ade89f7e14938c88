"""Recovery of training jobs with several API workers on one database (SQLite and PostgreSQL): a worker that
(re)starts fails only the jobs whose runner is gone (lease expired), never the job another live worker is running;
a table from before leases gets the lease columns and its left-over running jobs are failed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from cloud_api.training.runner import TrainingRunner, now_ms
from cloud_api.training.store import TrainingJobStore
from tests.support.live_api import wait_until

LEASE_S = 2.0


def runner(store: Any, data_dir: Path, published: list[dict]) -> TrainingRunner:
    return TrainingRunner(store, data_dir, publish=published.append, poll_s=0.2, lease_s=LEASE_S)


def test_a_restarting_worker_fails_only_jobs_whose_worker_is_gone(open_store, tmp_path: Path) -> None:
    published: list[dict] = []
    worker_a = runner(open_store(), tmp_path / "a", published)
    worker_a.jobs.ensure_schema()
    jobs = worker_a.jobs
    live = jobs.create("shift", "tomato-ripeness", {}, "ann", now_ms())
    orphan = jobs.create("shift", "tomato-ripeness", {}, "ann", now_ms() + 1)
    # worker A runs `live` (and renews its lease); a worker that has since died took `orphan` and never renews
    assert jobs.claim_next(now_ms(), worker_a.worker, worker_a.lease_ms).id == live.id
    assert jobs.claim_next(now_ms(), "dead-host:1:abcdef", worker_a.lease_ms).id == orphan.id
    worker_a.start()
    worker_b = None
    try:
        first_lease = jobs.get(live.id).lease_until_ms
        wait_until(lambda: jobs.get(orphan.id).lease_until_ms < now_ms(), 3 * LEASE_S,
                   what="the dead worker's lease to expire")
        # worker B starts on the same database (a restarted API worker): recovery fails only the orphan (B's, or
        # A's periodic sweep if that came first), never A's live job
        worker_b = runner(open_store(), tmp_path / "b", published)
        worker_b.jobs.ensure_schema()
        worker_b.recover()
        got_live, got_orphan = jobs.get(live.id), jobs.get(orphan.id)
        assert (got_live.state, got_live.worker, got_live.error) == ("running", worker_a.worker, None)
        assert got_live.lease_until_ms > first_lease, "worker A renews its lease"
        assert got_orphan.state == "failed" and "lease expired" in got_orphan.error
        assert got_orphan.finished_ms is not None
        worker_b.start()
        time.sleep(LEASE_S)  # B's own sweeps over a lease period leave A's live job alone
        assert jobs.get(live.id).state == "running"
        # worker A goes away without finishing (its job stays `running` in the row): B's sweep fails it after the lease
        worker_a._stop.set()
        worker_a._heart.join(10)
        wait_until(lambda: jobs.get(live.id).state == "failed", 4 * LEASE_S,
                   what="B to fail A's job once its lease expired")
        assert "lease expired" in jobs.get(live.id).error
    finally:
        worker_a.stop()
        if worker_b is not None:
            worker_b.stop()


def test_a_table_from_before_leases_gets_the_columns_and_its_running_jobs_fail(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None, check_same_thread=False)
    conn.execute("""CREATE TABLE training_jobs (id TEXT PRIMARY KEY, dataset TEXT NOT NULL, base_model TEXT NOT NULL,
        params TEXT NOT NULL, state TEXT NOT NULL, progress TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT
        '{}', error TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, created_by TEXT NOT NULL, created_ms BIGINT NOT
        NULL, updated_ms BIGINT NOT NULL, started_ms BIGINT, finished_ms BIGINT)""")
    conn.execute("INSERT INTO training_jobs VALUES ('tj-1-aaaaaa', 'shift', 'tomato-ripeness', '{}', 'running', '{}',"
                 " '{}', NULL, 0, 'ann', 1, 1, 1, NULL)")
    jobs = TrainingJobStore(lambda: conn)
    jobs.ensure_schema()
    jobs.ensure_schema()  # twice: the columns are there now
    old = jobs.get("tj-1-aaaaaa")
    assert (old.worker, old.lease_until_ms, old.state) == (None, None, "running")
    assert jobs.fail_orphans(now_ms()) == 1
    assert jobs.get("tj-1-aaaaaa").state == "failed"
    fresh = jobs.create("shift", "tomato-ripeness", {}, "ann", now_ms())
    claimed = jobs.claim_next(now_ms(), "w1", 60_000)
    assert claimed.id == fresh.id and claimed.worker == "w1" and claimed.lease_until_ms > now_ms()
    assert jobs.fail_orphans(now_ms()) == 0
