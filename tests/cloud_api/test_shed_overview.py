"""/sheds overview fields, /sheds/{id} detail and /snapshots/{event_id} on data seeded into real SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cloud_api.storage.records import AlertQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import ApiServer, alert, device_status, event_payload, settings_for

HOUR = 3600 * 1000
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32 + b"\xff\xd9"


def count(shed: str, ts_ms: int, counts: dict[str, int], *, device: str, seq: int, camera: str = "cam-1",
          row: str | None = "r1", snapshot: str | None = None) -> Event:
    return Event.model_validate(event_payload(
        id=f"{device}-0-{seq}", device=device, seq=seq, camera=camera, ts_ms=ts_ms, counts=counts,
        zone={"kind": "shed", "id": shed, "row": row}, snapshot=snapshot,
    ))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = settings_for(tmp_path_factory.mktemp("overview"), pick_ready_labels=["ripe", "red"],
                            zone_names={"shed-2": "Shed 2 (cherry)"},
                            pick_ready_labels_by_shed={"shed-4": ["green"]})  # shed-4 is picked green
    with ApiServer(settings) as api:
        store: SqliteStore = api.server.config.app.state.store
        now = time.time_ns() // 1_000_000
        store.write_events([
            count("shed-1", now - 25 * HOUR, {"ripe": 4}, device="edge-1", seq=1),  # the picture 24 h ago
            count("shed-1", now - 1 * HOUR, {"ripe": 10, "half_ripe": 3}, device="edge-1", seq=2),
            count("shed-1", now - 2 * HOUR, {"ripe": 5}, device="edge-1", seq=3, row="r2"),
            count("shed-1", now - HOUR // 2, {"ripe": 2, "red": 7}, device="edge-2", camera="cam-2", seq=1,
                  snapshot="snap-edge-2"),
            count("shed-2", now - HOUR // 6, {"ripe": 3}, device="edge-3", seq=1),
            count("shed-4", now - HOUR, {"green": 8}, device="edge-4", seq=1, row=None),
        ], now)
        store.write_status(device_status("online", device="edge-1", cameras={"cam-1": "shed-1", "cam-3": "shed-1"}), now)
        store.write_status(device_status("offline", device="edge-2", cameras={"cam-2": "shed-1"}), now)
        store.write_status(device_status("online", device="edge-4", cameras={"cam-1": "shed-4"}), now)
        store.write_alerts([alert("a1", shed="shed-1"), alert("a2", shed="shed-1"), alert("a3", shed="shed-1"),
                            alert("b1", shed="shed-2"), alert("n1", shed=None)], now)
        ids = {a.dedup_key: a.id for a in store.list_alerts(AlertQuery())}
        store.transition_alert(ids["a2"], "acknowledged", ("active",), "olga", now)
        store.transition_alert(ids["a3"], "cleared", ("active",), "olga", now)
        store.write_snapshot("site-a", "edge-1", "edge-1-0-2", JPEG, now)
        store.write_snapshot("site-a", "edge-1", "edge-1-0-1", JPEG[:-2] + b"\x01\xff\xd9", now)
        store.write_snapshot("site-a", "edge-2", "snap-edge-2", JPEG[:-2] + b"\x02\xff\xd9", now)
        yield api


def test_sheds_list_overview_fields(seeded: ApiServer) -> None:
    sheds = {s["id"]: s for s in seeded.get("/sheds")}
    assert list(sheds) == ["shed-1", "shed-2", "shed-4"]
    one = sheds["shed-1"]
    assert one["counts"] == {"ripe": 17, "half_ripe": 3, "red": 7}
    assert one["pick_ready"] == 24  # ripe 10 + 5 + 2, red 7 (pick_ready_labels = ripe, red)
    assert one["trend"] == 20  # 24 now minus 4 (edge-1/cam-1/r1 25 h ago; nothing else counted then)
    assert one["camera_state"] == "offline"  # edge-2 is offline
    assert one["open_alerts"] == 2  # active a1 + acknowledged a2; a3 is cleared
    assert one["site"] == "site-a" and one["name"] == "shed-1"
    two = sheds["shed-2"]
    assert (two["pick_ready"], two["trend"], two["camera_state"], two["open_alerts"]) == (3, 0, "unknown", 1)
    assert two["name"] == "Shed 2 (cherry)"  # Settings.zone_names; shed-1 has none and shows its id
    assert seeded.get("/sheds/shed-2")["name"] == "Shed 2 (cherry)"
    four = sheds["shed-4"]
    assert (four["pick_ready"], four["camera_state"], four["open_alerts"]) == (8, "online", 0)  # its own labels


def test_shed_detail_rows_cameras_snapshot(seeded: ApiServer) -> None:
    detail = seeded.get("/sheds/shed-1")
    assert detail["pick_ready"] == 24 and detail["open_alerts"] == 2 and detail["site"] == "site-a"
    assert detail["rows"] == [
        {"row": "r1", "counts": {"ripe": 12, "half_ripe": 3, "red": 7}},
        {"row": "r2", "counts": {"ripe": 5}},
    ]
    cameras = [(c["device"], c["camera"], c["state"]) for c in detail["cameras"]]
    assert cameras == [("edge-1", "cam-1", "online"), ("edge-1", "cam-3", "online"), ("edge-2", "cam-2", "offline")]
    assert all(c["last_seen_ms"] for c in detail["cameras"])
    assert detail["latest_snapshot"] == "snap-edge-2"  # named by the newest event's snapshot field
    assert seeded.get("/sheds/shed-4")["rows"] == [{"row": None, "counts": {"green": 8}}]
    assert seeded.get("/sheds/shed-2")["latest_snapshot"] is None
    assert seeded.client.get("/sheds/shed-404").status_code == 404


def test_snapshot_bytes_and_404(seeded: ApiServer) -> None:
    response = seeded.client.get("/snapshots/edge-1-0-2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg" and response.content == JPEG
    assert seeded.client.get("/snapshots/none-such").status_code == 404
    assert seeded.anon.get("/snapshots/edge-1-0-2").status_code == 401


def test_openapi_documents_the_new_routes(seeded: ApiServer) -> None:
    doc = seeded.anon.get(f"{seeded.root}/openapi.json").json()
    paths = doc["paths"]

    def ok_schema(path: str, method: str = "get") -> dict:
        return paths[path][method]["responses"]["200"]["content"]

    assert ok_schema("/api/v1/sheds/{shed_id}")["application/json"]["schema"]["$ref"].endswith("ShedDetailOut")
    assert "image/jpeg" in ok_schema("/api/v1/snapshots/{event_id}")
    assert ok_schema("/api/v1/alerts")["application/json"]["schema"]["items"]["$ref"].endswith("AlertOut")
    assert ok_schema("/api/v1/alerts/{alert_id}/ack", "post")["application/json"]["schema"]["$ref"].endswith("AlertOut")
    assert ok_schema("/api/v1/harvest/plan", "post")["application/json"]["schema"]["$ref"].endswith("HarvestPlanOut")
    assert ok_schema("/api/v1/auth/login", "post")["application/json"]["schema"]["$ref"].endswith("TokenOut")
    assert {"409", "404"} <= set(paths["/api/v1/alerts/{alert_id}/clear"]["post"]["responses"])
    shed_fields = doc["components"]["schemas"]["ShedOut"]["properties"]
    assert {"pick_ready", "trend", "camera_state", "open_alerts", "site"} <= set(shed_fields)
    assert "row ids of the alert lifecycle" in doc["info"]["description"]
