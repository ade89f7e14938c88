"""Event identity in the store (SQLite and PostgreSQL): duplicates by content, id collisions, installs, the seq audit, schema 3 files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_api.storage.records import AlertQuery, EventQuery
from cloud_api.storage.sqlite_schema import SCHEMA_VERSION
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import DeviceStatus, Event
from tests.cloud_api.cloudapi_builders import T0, count_event

INSTANCE_A, INSTANCE_B = "a1" * 8, "b2" * 8


def open_sqlite(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "db" / "fieldline.db")
    store.open()
    return store


def events_of(store: SqliteStore, site: str, device: str) -> list[dict]:
    return store.list_events(EventQuery(site=site, device=device))


def event(seq: int, *, site: str = "site-a", instance: str | None = INSTANCE_A, ripe: int = 1, boot: int = 1,
          device: str = "box") -> Event:
    base = count_event("shed-1", T0 + seq, {"ripe": ripe}, seq=seq, device=device)
    prefix = f"{device}-{instance}" if instance else device
    return base.model_copy(update={"id": f"{prefix}-{boot}-{seq}", "site": site, "instance": instance, "boot": boot})


def test_a_resend_or_a_replay_is_stored_once(store):
    first = event(1)
    assert store.write_events([first], T0) == 1
    replay = first.model_copy(update={"historical": True})
    written = store.write_events([first, replay], T0)
    assert written == 0 and written.collisions == 0 and written.repeats == 2
    assert [e["id"] for e in events_of(store, "site-a", "box")] == [first.id]
    assert store.device_audit("site-a", "box").installs[0].repeats == 2
    store.close()


def test_a_known_id_with_other_content_is_stored_under_a_derived_id_and_alerted(store):
    original = event(1, instance=None, ripe=3)
    other_site = event(1, instance=None, ripe=7, site="site-b")  # same legacy id "box-1-1" at another site
    assert original.id == other_site.id
    written = store.write_events([original, other_site], T0)  # one batch
    assert written == 2 and written.collisions == 1
    again = store.write_events([other_site.model_copy(update={"historical": True})], T0 + 5)
    assert again == 0 and again.collisions == 0, "the collided event delivered again is a duplicate"
    (stored_b,) = events_of(store, "site-b", "box")
    assert stored_b["id"].startswith(f"{original.id}~") and stored_b["counts"] == {"ripe": 7}
    assert stored_b["id_collision_of"] == original.id
    assert [e["counts"] for e in events_of(store, "site-a", "box")] == [{"ripe": 3}]
    (alert,) = store.list_alerts(AlertQuery(state="active"))
    assert (alert.code, alert.site, alert.device, alert.severity) == ("id_collision", "site-b", "box", "warning")
    assert "site-a/box" in alert.message
    assert store.count_id_collisions() == 1
    assert store.device_audit("site-b", "box").id_collisions == 1
    store.close()


def test_one_name_at_two_sites_is_two_devices_with_their_own_latest_counts(store):
    store.write_events([event(1, site="site-a", ripe=2), event(1, site="site-b", instance=INSTANCE_B, ripe=5)], T0)
    devices = store.list_devices()
    assert [(d.site, d.device) for d in devices] == [("site-a", "box"), ("site-b", "box")]
    latest = sorted((c.site, c.counts["ripe"]) for c in store.latest_counts("shed-1"))
    assert latest == [("site-a", 2), ("site-b", 5)]
    assert store.list_sheds()[0].counts == {"ripe": 7}
    assert store.get_device("site-c", "box") is None
    store.close()


def test_a_new_install_with_a_lower_boot_replaces_the_old_status(store):

    def status(instance: str, boot: int, ts: int) -> DeviceStatus:
        return DeviceStatus(state="online", device="box", site="site-a", boot=boot, instance=instance, ts_ms=ts)

    assert store.write_status(status(INSTANCE_A, 7, T0), T0)
    assert not store.write_status(status(INSTANCE_A, 6, T0 + 1), T0), "an older boot of the same install is stale"
    assert store.write_status(status(INSTANCE_B, 1, T0 + 2), T0), "a wiped box starts again at boot 1"
    device = store.get_device("site-a", "box")
    assert (device.instance, device.boot) == (INSTANCE_B, 1)
    assert not store.write_status(status(INSTANCE_A, 8, T0 + 1), T0), "the old install's late status is older"
    store.close()


def test_the_audit_shows_gaps_repeats_and_a_new_install(store):
    store.write_events([event(s, boot=1) for s in (1, 2, 3)] + [event(s, boot=2) for s in (4, 7)], T0)
    store.write_events([event(3, boot=1)], T0 + 10)  # a repeat
    store.write_events([event(s, instance=INSTANCE_B) for s in (2, 3)], T0 + 20)  # wiped: new install, 1 lost
    audit = store.device_audit("site-a", "box")
    first, second = audit.installs
    assert audit.reinstalled and (first.instance, second.instance) == (INSTANCE_A, INSTANCE_B)
    assert (first.events, first.first_seq, first.last_seq, first.missing, first.repeats) == (5, 1, 7, 2, 1)
    assert [(g.first, g.last) for g in first.gaps] == [(5, 6)]
    assert first.boots == {1: (1, 3, 3), 2: (4, 7, 2)}
    assert [(g.first, g.last) for g in second.gaps] == [(1, 1)] and second.missing == 1
    alerts = store.list_alerts(AlertQuery())
    assert [a.code for a in alerts] == ["instance_changed"] and INSTANCE_B in alerts[0].message
    assert store.device_audit("site-a", "nobody") is None
    store.close()


def test_a_schema_3_file_is_migrated_to_site_keyed_devices(tmp_path):
    path = tmp_path / "db" / "fieldline.db"
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    payload = event(1, instance=None).to_json().decode()
    conn.executescript(f"""
        CREATE TABLE events (id TEXT PRIMARY KEY, device TEXT NOT NULL, site TEXT NOT NULL, camera TEXT NOT NULL,
            kind TEXT NOT NULL, zone_kind TEXT NOT NULL, zone_id TEXT NOT NULL, row TEXT, ts_ms INTEGER NOT NULL,
            boot INTEGER NOT NULL, seq INTEGER NOT NULL, historical INTEGER NOT NULL, payload TEXT NOT NULL,
            received_ms INTEGER NOT NULL);
        CREATE INDEX events_device_ts ON events (device, ts_ms);
        CREATE TABLE latest_counts (zone_kind TEXT NOT NULL, zone_id TEXT NOT NULL, device TEXT NOT NULL,
            camera TEXT NOT NULL, row_key TEXT NOT NULL, event_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,
            boot INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (zone_kind, zone_id, device, camera, row_key));
        CREATE TABLE devices (device TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL,
            last_seen_ms INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, boot INTEGER NOT NULL DEFAULT 0,
            agent_version TEXT NOT NULL DEFAULT '', status_ts_ms INTEGER, model TEXT,
            cameras TEXT NOT NULL DEFAULT '[]', stats TEXT);
        INSERT INTO events VALUES ('box-1-1', 'box', 'site-a', 'cam-1', 'count', 'shed', 'shed-1', 'r1', {T0 + 1},
            1, 1, 0, '{payload}', {T0});
        INSERT INTO latest_counts VALUES ('shed', 'shed-1', 'box', 'cam-1', 'r1', 'box-1-1', {T0 + 1}, 1, 1);
        INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms, boot)
            VALUES ('box', 'site-a', 'online', {T0}, {T0}, 3);
        PRAGMA user_version = 3;
    """)
    conn.close()
    store = open_sqlite(tmp_path)
    assert [(d.site, d.device, d.boot) for d in store.list_devices()] == [("site-a", "box", 3)]
    assert [(c.site, c.event_id) for c in store.latest_counts()] == [("site-a", "box-1-1")]
    # the same legacy id from another site is now a collision, not a silent duplicate
    assert store.write_events([event(1, site="site-b", instance=None, ripe=9)], T0).collisions == 1
    assert len(store.list_devices()) == 2
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT instance FROM events WHERE id = 'box-1-1'").fetchone() == ("",)
    conn.close()
