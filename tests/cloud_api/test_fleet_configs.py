"""Config versions over real HTTP, on SQLite and PostgreSQL: upload checked with the agent's schema (errors name
the field), numbering, roles, a config deployment's commands, the stats history the gate reads; and the upgrade of
a SQLite database made before config rollouts. The rollouts with real agents are in tests/e2e/test_fleet_rollout.py."""

from __future__ import annotations

import sqlite3

import pytest

from cloud_api.fleet.deployment_records import DeploymentDevice, DeploymentRecord
from cloud_api.fleet.records import AuditRecord
from cloud_api.services.users import create_user
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import DeviceStats
from tests.cloud_api.cloudapi_builders import PASSWORD, SITE, ApiServer, device_status, login, settings_for, wait_until

CAMERAS = {"cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 3}, "zone": {"id": "shed-3"},
                        "fps": 1}]}


@pytest.fixture()
def api(tmp_path, storage):
    with ApiServer(settings_for(tmp_path, **storage)) as server:
        store = server.server.config.app.state.store
        create_user(store, "olga", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        for i in (1, 2):
            store.write_status(device_status("online", device=f"edge-{i}"), 1000 + i)
        yield server


def test_upload_checks_with_the_agent_schema_and_numbers_versions(api):
    olga, vic = login(api, "olga"), login(api, "vic")
    first = olga.post("/configs", json={"name": "shed-cams", "config": CAMERAS, "note": "1 fps"})
    assert first.status_code == 201, first.text
    body = first.json()["config"]
    assert body["version"] == "1" and body["config"] == CAMERAS and body["created_by"] == "olga"
    again = olga.post("/configs", json={"name": "shed-cams", "config": CAMERAS})
    assert again.status_code == 200 and again.json() == {"created": False, "config": body}
    second = olga.post("/configs", json={"name": "shed-cams", "config": {"stats_interval_s": 30}}).json()["config"]
    assert second["version"] == "2" and second["sha256"] != body["sha256"]
    taken = olga.post("/configs", json={"name": "shed-cams", "version": "2", "config": {"stats_interval_s": 5}})
    assert taken.status_code == 409 and "version '2' exists" in taken.json()["detail"]

    refusals = [
        ({"cameras": [{**CAMERAS["cameras"][0], "fps": -1}]}, "cameras[0].fps: "),
        ({"model": {"conf_threshold": 3}}, "conf_threshold: Input should be less than or equal to 1"),
        ({"stats_interval_s": "often"}, "stats_interval_s: "),
        ({"model": {"type": "yolov8"}}, "model.yolov8.labels: Field required"),  # a foreign model needs labels
        ({"mqtt": {"port": 1884}}, "mqtt: cannot be set by a config version"),
        ({"model": {"path": "/tmp/other.onnx"}}, "model.path: cannot be set"),
        ({"cameras": []}, "cameras: "),
    ]
    for config, words in refusals:
        response = olga.post("/configs", json={"name": "bad", "config": config})
        assert response.status_code == 422 and words in response.json()["detail"], (config, response.text)
    assert vic.post("/configs", json={"name": "v", "config": CAMERAS}).status_code == 403
    listed = vic.get("/configs").json()
    assert [(c["name"], c["version"]) for c in listed] == [("shed-cams", "2"), ("shed-cams", "1")]
    assert vic.get(f"/configs/{body['sha256']}").json() == body
    assert vic.get(f"/configs/{'0' * 64}").status_code == 404
    audit = [(a["action"], a["result"]) for a in olga.get("/audit").json() if a["action"] == "config.upload"]
    assert audit.count(("config.upload", "ok")) == 2 and audit.count(("config.upload", "refused")) == 8


def test_a_config_as_yaml_text_is_parsed_and_bad_text_named(api):
    olga = login(api, "olga")
    text = "cameras:\n  - name: cam-1\n    source: {type: synthetic, seed: 3}\n    zone: {id: shed-3}\n    fps: 1\n"
    created = olga.post("/configs", json={"name": "yaml-cams", "config": text})
    assert created.status_code == 201, created.text
    assert created.json()["config"]["config"] == CAMERAS
    for bad, words in (("cameras: [\n  - {name: x", "not valid YAML or JSON at line "),
                       ("- just\n- a list\n", "expected a mapping (key: value) at the top, got list"),
                       ("stats_interval_s: often\n", "stats_interval_s: ")):
        response = olga.post("/configs", json={"name": "yaml-bad", "config": bad})
        assert response.status_code == 422 and words in response.json()["detail"], (bad, response.text)


def test_a_config_deployment_sends_the_version_as_a_patch(api):
    olga = login(api, "olga")
    config = olga.post("/configs", json={"name": "shed-cams", "config": CAMERAS}).json()["config"]
    missing = olga.post("/deployments", json={"kind": "config", "sha256": "1" * 64, "target": {"site": SITE}})
    assert missing.status_code == 404 and "no config version" in missing.json()["detail"]
    created = olga.post("/deployments", json={"kind": "config", "sha256": config["sha256"], "target": {"site": SITE},
                                              "canary": 1, "max_latency_pct": 50, "min_stats_samples": 4})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "config" and body["policy"]["max_latency_pct"] == 50
    assert body["policy"]["min_stats_samples"] == 4
    row = wait_until(lambda: next((d for d in olga.get(f"/deployments/{body['id']}").json()["devices"]
                                   if d["state"] == "installing"), None), 10, "canary installing")
    command = olga.get(f"/commands/{row['command_id']}").json()
    assert command["name"] == "config" and command["args"] == {"patch": CAMERAS, "version": config["sha256"]}
    audit = olga.get("/audit", params={"target": config["sha256"]}).json()
    assert [(a["action"], a["target_kind"]) for a in audit] == [("deployment.create", "config"),
                                                                ("config.upload", "config")]


def test_stats_are_kept_per_model_and_config_for_the_gate(store):
    status = device_status("online", device="edge-1").model_copy(update={"config_hash": "c1"})
    store.write_status(status, 1000)

    def stats(ts: int, fps: float, p95: float) -> DeviceStats:
        return DeviceStats.model_validate({"device": "edge-1", "site": SITE, "ts_ms": ts, "fps": fps,
                                           "latency_ms": {"p50": 1.0, "p95": p95}, "spool_depth": 0, "dropped": 0,
                                           "cpu": 1.0})

    store.write_stats(stats(1, 2.0, 40.0), 2000)
    store.write_status(status.model_copy(update={"config_hash": "c2", "boot": 2}), 3000)
    store.write_stats(stats(2, 1.0, 80.0), 4000)
    assert store.device_config_hash(SITE, "edge-1") == "c2"
    assert [(s.ts_ms, s.fps, s.p95_ms) for s in store.stats_samples(SITE, "edge-1", 0, 10_000)] == [
        (2000, 2.0, 40.0), (4000, 1.0, 80.0)]
    assert [s.ts_ms for s in store.stats_samples(SITE, "edge-1", 0, 10_000, config_hash="c1")] == [2000]
    store.write_stats(stats(3, 2.0, 40.0), 4000 + 2 * 3_600_000 + 1)  # older than two hours: pruned
    assert [s.ts_ms for s in store.stats_samples(SITE, "edge-1", 0, 10**10)] == [4000 + 2 * 3_600_000 + 1]


def test_a_database_from_before_config_rollouts_is_upgraded_in_place(tmp_path):
    path = tmp_path / "fl.db"
    store = SqliteStore(path)
    store.open()
    store.close()
    conn = sqlite3.connect(path)  # what the file looked like: kind could only be 'model'
    conn.execute("DROP TABLE fleet_deployments")
    conn.execute("CREATE TABLE fleet_deployments (id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('model')),"
                 " sha256 TEXT NOT NULL, target TEXT NOT NULL, policy TEXT NOT NULL, state TEXT NOT NULL, stage INTEGER"
                 " NOT NULL DEFAULT 0, stages INTEGER NOT NULL, reason TEXT, after_rollback TEXT, api_url TEXT NOT NULL,"
                 " created_by TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, finished_ms"
                 " INTEGER)")
    conn.execute("INSERT INTO fleet_deployments VALUES ('a', 'model', 'x', '{}', '{}', 'succeeded', 1, 1, NULL, NULL,"
                 " 'http://h', 'olga', 1, 2, 3)")
    conn.execute("ALTER TABLE fleet_audit RENAME TO fleet_audit_new")  # and the audit log took device and model only
    conn.execute("CREATE TABLE fleet_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, actor TEXT"
                 " NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target_kind TEXT NOT NULL CHECK (target_kind IN"
                 " ('device', 'model')), target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL)")
    conn.execute("DROP TABLE fleet_audit_new")
    conn.execute("INSERT INTO fleet_audit (ts_ms, actor, role, action, target_kind, target, result, detail) VALUES"
                 " (1, 'olga', 'operator', 'model.upload', 'model', 'x', 'ok', '{}')")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    store.open()
    assert store.get_deployment("a").state == "succeeded"
    record = DeploymentRecord(id="b", kind="config", sha256="c" * 64, target={"site": SITE}, policy={},
                              state="running", stage=0, stages=1, reason=None, api_url="http://h", created_by="olga",
                              created_ms=5, updated_ms=5)
    audit = AuditRecord(id=0, ts_ms=5, actor="olga", role="operator", action="deployment.create",
                        target_kind="config", target="c" * 64, result="ok")
    store.add_deployment(record, [DeploymentDevice("b", SITE, "edge-1", 0, "waiting")], audit)
    assert store.get_deployment("b").kind == "config" and len(store.deployment_devices("b")) == 1
    assert [(a.action, a.target_kind) for a in store.list_audit()] == [("deployment.create", "config"),
                                                                       ("model.upload", "model")]
    store.close()
