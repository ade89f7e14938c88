"""/lines and /qa/... on inspection events written into real SQLite, served by the real app under uvicorn."""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_api.services.qa import QaService
from cloud_api.services.users import create_user
from cloud_api.storage.qa_records import InspectionRow
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, Publisher, login, settings_for, wait_until
from tests.cloud_api.qa_builders import inspection, inspection_payload
from tests.support.mosquitto import MosquittoBroker

MIN = 60_000
B = 1_699_999_200_000  # an hour boundary (UTC 2023-11-14 22:00)
BUCKET = 10 * MIN
WINDOW = {"from": B, "to": B + 10 * BUCKET}
# line-1: ten 10-minute subgroups of varying size; subgroup 5 is out of control
SIZES = [20, 40, 20, 40, 20, 40, 20, 40, 20, 40]
REJECTS = [1, 2, 1, 2, 1, 10, 1, 2, 1, 2]
# the primary defect of each of the 23 rejects, in time order; the first two rejects also show an inclusion
PRIMARY = ["scratches"] * 10 + ["inclusion"] * 7 + ["patches"] * 5 + ["crazing"]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"


def seed_events() -> list[Event]:
    events: list[Event] = []
    seq = 0
    reject_no = 0
    for bucket, (n, d) in enumerate(zip(SIZES, REJECTS, strict=True)):
        for j in range(n):
            seq += 1
            ts = B + bucket * BUCKET + j * (BUCKET // n)
            if j < d:  # the first d parts of the subgroup are rejects
                defects = [(PRIMARY[reject_no], 0.91, (0.1, 0.2, 0.3, 0.4))]
                if reject_no < 2:
                    defects.append(("inclusion", 0.55, (0.5, 0.5, 0.6, 0.7)))
                snapshot = {0: "snap-a", 1: "missing-snap"}.get(reject_no)
                events.append(inspection("line-1", ts, "reject", seq=seq, defects=defects, snapshot=snapshot))
                reject_no += 1
            else:
                # a detection below the reject threshold on a passed part is not a defect
                defects = [("scratches", 0.2, (0.0, 0.0, 0.1, 0.1))] if j == d else None
                events.append(inspection("line-1", ts, "pass", seq=seq, defects=defects))
    # line-2 (another device and site): 4 parts in the window, 1 reject; 3 more before the window
    for k in range(7):
        ts = B - 3 * MIN + k * MIN
        events.append(inspection("line-2", ts, "reject" if k == 5 else "pass", seq=k + 1, device="cam-box-2",
                                 site="plant-b", defects=[("pitted_surface", 0.8, (0.2, 0.2, 0.4, 0.4))]))
    # line-10 has one old part only: listed, but with zero parts in the window
    events.append(inspection("line-10", B - 60 * MIN, "pass", seq=1, device="cam-box-3"))
    # an inspection that is not on a line zone is not a QA part
    events.append(Event.model_validate({**inspection_payload("line-1", B + MIN, "reject", seq=1, device="cam-box-9"),
                                        "zone": {"kind": "shed", "id": "shed-1", "row": None}}))
    return events


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = settings_for(tmp_path_factory.mktemp("qa"), zone_names={"line-2": "Press line 2"})
    with ApiServer(settings) as server:
        store: SqliteStore = server.server.config.app.state.store
        events = seed_events()
        assert store.write_events(events, B) == len(events)
        assert store.write_events(events[:50], B) == 0  # duplicates are not counted twice
        first_reject = events[0]
        store.write_snapshot("site-a", "cam-box-1", "snap-a", JPEG, B)  # named by the event's snapshot field
        second_line2_reject = next(e for e in events if e.zone.id == "line-2" and e.verdict == "reject")
        store.write_snapshot("plant-b", "cam-box-2", second_line2_reject.id, JPEG, B)  # published under its id
        assert first_reject.snapshot == "snap-a"
        create_user(store, "vera", PASSWORD, "viewer")
        yield server


def test_lines_with_counts_in_the_window(api: ApiServer) -> None:
    lines = api.get("/lines", **WINDOW)
    assert [line["id"] for line in lines] == ["line-1", "line-2", "line-10"]  # natural order
    one, two, ten = lines
    assert (one["parts"], one["rejects"], one["site"], one["name"]) == (300, 23, "site-a", "line-1")
    assert one["defect_rate"] == pytest.approx(23 / 300)
    assert one["last_ts_ms"] == B + 9 * BUCKET + 39 * (BUCKET // 40)
    assert (two["parts"], two["rejects"], two["site"], two["name"]) == (4, 1, "plant-b", "Press line 2")
    assert two["defect_rate"] == pytest.approx(0.25)
    assert (ten["parts"], ten["rejects"], ten["defect_rate"], ten["last_ts_ms"]) == (0, 0, None, B - 60 * MIN)


def test_lines_default_window_is_the_last_8_hours(api: ApiServer) -> None:
    lines = api.get("/lines")  # the seeded parts are from 2023: every line is listed with nothing in the window
    assert [(line["id"], line["parts"]) for line in lines] == [("line-1", 0), ("line-2", 0), ("line-10", 0)]


def test_summary_counts_rate_and_defects_by_class(api: ApiServer) -> None:
    s = api.get("/qa/summary", line="line-1", **WINDOW)
    assert (s["parts"], s["passed"], s["rejects"]) == (300, 277, 23)
    assert s["defect_rate"] == pytest.approx(23 / 300)
    assert (s["from_ms"], s["to_ms"], s["line"]) == (B, B + 10 * BUCKET, "line-1")
    assert s["defects"] == [
        {"label": "scratches", "count": 10, "parts": 10},  # the passed part's 0.2 scratch is not counted
        {"label": "inclusion", "count": 9, "parts": 9},
        {"label": "patches", "count": 5, "parts": 5},
        {"label": "crazing", "count": 1, "parts": 1},
    ]
    every = api.get("/qa/summary", **WINDOW)
    assert (every["line"], every["parts"], every["rejects"]) == (None, 304, 24)
    assert {"label": "pitted_surface", "count": 1, "parts": 1} in every["defects"]


def test_trend_per_bucket_including_empty_ones(api: ApiServer) -> None:
    t = api.get("/qa/trend", line="line-1", bucket=BUCKET, **{"from": B, "to": B + 12 * BUCKET})
    assert t["bucket_ms"] == BUCKET and len(t["points"]) == 12
    assert [p["parts"] for p in t["points"]] == [*SIZES, 0, 0]
    assert [p["rejects"] for p in t["points"]] == [*REJECTS, 0, 0]
    assert [p["ts_ms"] for p in t["points"]] == [B + i * BUCKET for i in range(12)]
    assert t["points"][5]["rate"] == pytest.approx(0.25)
    assert t["points"][10]["rate"] is None
    # an hour bucket: 6 subgroups in the first hour, 4 in the second
    hourly = api.get("/qa/trend", line="line-1", bucket=60 * MIN, **WINDOW)
    assert [(p["parts"], p["rejects"]) for p in hourly["points"]] == [(180, 17), (120, 6)]
    # no bucket given: a round size with at most 48 buckets (100 min -> 5 min)
    assert api.get("/qa/trend", line="line-1", **WINDOW)["bucket_ms"] == 5 * MIN


def test_pareto_order_and_cumulative_percent(api: ApiServer) -> None:
    p = api.get("/qa/pareto", line="line-1", **WINDOW)
    assert p["total"] == 25
    assert [(i["label"], i["count"]) for i in p["items"]] == [
        ("scratches", 10), ("inclusion", 9), ("patches", 5), ("crazing", 1)]
    assert [i["cumulative_pct"] for i in p["items"]] == [40.0, 76.0, 96.0, 100.0]
    assert [i["share"] for i in p["items"]] == pytest.approx([0.4, 0.36, 0.2, 0.04])
    assert api.get("/qa/pareto", line="line-10", **WINDOW) == {
        "line": "line-10", "from_ms": B, "to_ms": B + 10 * BUCKET, "total": 0, "items": []}


def test_pchart_limits_vary_with_n_and_the_drift_is_flagged(api: ApiServer) -> None:
    c = api.get("/qa/pchart", line="line-1", bucket=BUCKET, **WINDOW)
    p_bar = 23 / 300
    assert c["p_bar"] == pytest.approx(p_bar)
    assert (c["total_n"], c["total_rejects"], c["bucket_ms"]) == (300, 23, BUCKET)
    points = c["points"]
    assert [p["n"] for p in points] == SIZES
    # n = 20: sigma = sqrt(0.0766667 * 0.9233333 / 20) = 0.0594932 -> UCL 0.2551464
    # n = 40: sigma = 0.0420681 -> UCL 0.2028709; LCL clipped at 0 for both
    assert points[0]["sigma"] == pytest.approx(0.0594932, abs=1e-7)
    assert points[0]["ucl"] == pytest.approx(0.2551464, abs=1e-7)
    assert points[1]["ucl"] == pytest.approx(0.2028709, abs=1e-7)
    assert {p["lcl"] for p in points} == {0.0}
    for p in points:
        assert p["ucl"] == pytest.approx(p_bar + 3 * math.sqrt(p_bar * (1 - p_bar) / p["n"]))
    assert c["flagged"] == 1
    assert [i for i, p in enumerate(points) if p["flagged"]] == [5]
    assert points[5]["rules"] == ["beyond_3sigma"] and points[5]["p"] == pytest.approx(0.25)
    assert points[5]["z"] == pytest.approx((0.25 - p_bar) / math.sqrt(p_bar * (1 - p_bar) / 40))
    # empty buckets are not plotted: the window reaches 2 buckets past the data
    wider = api.get("/qa/pchart", line="line-1", bucket=BUCKET, **{"from": B, "to": B + 12 * BUCKET})
    assert len(wider["points"]) == 10
    # a known centre line (phase II)
    fixed = api.get("/qa/pchart", line="line-1", bucket=BUCKET, p_bar=0.05, **WINDOW)
    assert fixed["p_bar"] == 0.05 and fixed["points"][5]["flagged"]


def test_reject_gallery_pages_newest_first_with_defects_and_snapshots(api: ApiServer) -> None:
    first = api.get("/qa/rejects", line="line-1", limit=10)
    assert len(first["items"]) == 10 and first["next_before"]
    seen = [item["event_id"] for item in first["items"]]
    cursor = first["next_before"]
    while cursor:
        page = api.get("/qa/rejects", line="line-1", limit=10, before=cursor)
        seen += [item["event_id"] for item in page["items"]]
        cursor = page["next_before"]
    assert len(seen) == len(set(seen)) == 23
    everything = api.get("/qa/rejects", line="line-1", limit=200)["items"]
    assert [i["event_id"] for i in everything] == seen
    assert [i["ts_ms"] for i in everything] == sorted((i["ts_ms"] for i in everything), reverse=True)
    oldest = everything[-1]
    assert oldest["snapshot"] == "snap-a"
    assert oldest["defects"] == [
        {"label": "scratches", "score": 0.91, "box": [0.1, 0.2, 0.3, 0.4]},
        {"label": "inclusion", "score": 0.55, "box": [0.5, 0.5, 0.6, 0.7]},
    ]
    assert everything[-2]["snapshot"] is None  # names a snapshot that never arrived
    line2 = api.get("/qa/rejects", line="line-2")
    assert line2["next_before"] is None and len(line2["items"]) == 1
    assert line2["items"][0]["snapshot"] == line2["items"][0]["event_id"]  # published under the event id
    assert api.client.get(f"/snapshots/{oldest['snapshot']}").content == JPEG
    # a bare ts_ms cursor: everything strictly older
    older = api.get("/qa/rejects", line="line-1", limit=200, before=str(everything[0]["ts_ms"]))
    assert [i["event_id"] for i in older["items"]] == seen[1:]
    assert len(api.get("/qa/rejects", limit=200)["items"]) == 24  # every line


def test_csv_export(api: ApiServer) -> None:
    response = api.client.get("/qa/export.csv", params={"line": "line-2", **WINDOW})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="inspections_line-2_' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 4
    assert list(rows[0]) == ["ts", "ts_ms", "line", "site", "device", "camera", "event_id", "verdict", "defects",
                             "snapshot"]
    assert rows[0]["ts"] == "2023-11-14T22:00:00.000Z" and rows[0]["ts_ms"] == str(B)
    assert [r["verdict"] for r in rows] == ["pass", "pass", "reject", "pass"]
    reject = rows[2]
    assert (reject["line"], reject["site"], reject["device"], reject["defects"]) == (
        "line-2", "plant-b", "cam-box-2", "pitted_surface:0.800")
    assert rows[0]["defects"] == ""  # a passed part has no defects
    every = api.client.get("/qa/export.csv", params=WINDOW)
    parsed = list(csv.DictReader(io.StringIO(every.text)))
    assert len(parsed) == 304
    assert [r["ts_ms"] for r in parsed] == sorted((r["ts_ms"] for r in parsed), key=int)
    assert parsed[0]["defects"] == "scratches:0.910;inclusion:0.550"


def test_csv_chunks_and_formula_defusing() -> None:
    rows = [InspectionRow(event_id=f"=e{i}", ts_ms=B + i, line="-line", site="s", device="d", camera="@c",
                          verdict="pass", defects=[("+x", 0.5)], snapshot=None) for i in range(5)]
    chunks = list(QaService.csv_chunks(iter(rows), rows_per_chunk=2))
    assert len(chunks) == 3  # rows 0-1 (with the header), 2-3, 4
    parsed = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert len(parsed) == 5
    assert (parsed[0]["event_id"], parsed[0]["line"], parsed[0]["camera"], parsed[0]["defects"]) == (
        "'=e0", "'-line", "'@c", "'+x:0.500")


def test_auth_and_roles(api: ApiServer) -> None:
    paths = ["/lines", "/qa/summary", "/qa/trend", "/qa/pareto", "/qa/pchart", "/qa/rejects", "/qa/export.csv"]
    for path in paths:
        assert api.anon.get(path).status_code == 401, path
        assert api.anon.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
    with login(api, "vera") as viewer:  # any role may read the QA views
        for path in paths:
            assert viewer.get(path, params=WINDOW).status_code == 200, path


def test_errors(api: ApiServer) -> None:
    assert api.client.get("/qa/summary", params={"line": "line-404"}).status_code == 404
    assert api.client.get("/qa/rejects", params={"line": "line-404"}).status_code == 404
    assert api.client.get("/qa/export.csv", params={"line": "line-404"}).status_code == 404
    bad = [
        ("/qa/summary", {"from": B, "to": B}),
        ("/lines", {"from": B + 1, "to": B}),
        ("/qa/trend", {"bucket": 10}),
        ("/qa/pchart", {"bucket": 1000, "from": B, "to": B + 24 * 3600_000}),  # 86 400 buckets
        ("/qa/rejects", {"before": "yesterday"}),
        ("/qa/rejects", {"limit": 0}),
        ("/qa/pchart", {"p_bar": 1.5}),
        ("/qa/summary", {"to": 10**20}),
        ("/qa/rejects", {"before": str(10**20)}),
    ]
    for path, params in bad:
        response = api.client.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
    assert "buckets" in api.client.get("/qa/pchart", params=bad[3][1]).json()["detail"]


def test_dashboard_page_and_static_files_are_served(api: ApiServer) -> None:
    page = httpx.get(f"{api.root}/qa", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/qa/static/qa.js" in page.text and "//cdn" not in page.text
    for name in ("qa.js", "charts.js", "qa.css"):
        static = httpx.get(f"{api.root}/qa/static/{name}", timeout=10)
        assert static.status_code == 200, name
        remote = re.findall(r"https?://[^\s\"']+", static.text.replace("http://www.w3.org/2000/svg", ""))
        assert remote == [], f"{name} refers to remote resources: {remote}"
    paths = httpx.get(f"{api.root}/openapi.json", timeout=10).json()["paths"]
    for path in ("/api/v1/lines", "/api/v1/qa/summary", "/api/v1/qa/pchart", "/api/v1/qa/rejects"):
        assert "$ref" in str(paths[path]["get"]["responses"]["200"]), path


def test_existing_database_is_backfilled_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SqliteStore(path)
    store.open()
    store.write_events([inspection("line-7", B, "reject", seq=1, defects=[("crazing", 0.7, (0, 0, 1, 1))]),
                        inspection("line-7", B + 1, "pass", seq=2)], B)
    conn = store._conn()
    for table in ("inspections", "reject_defects", "qa_lines"):
        conn.execute(f"DROP TABLE {table}")  # as a database written before the QA tables existed
    store.close()
    store = SqliteStore(path)
    store.open()
    try:
        assert store.qa_totals("line-7", B, B + 10).parts == 2
        assert [(c.label, c.count) for c in store.qa_defect_classes(None, B, B + 10)] == [("crazing", 1)]
        assert [line.id for line in store.qa_lines(B, B + 10)] == ["line-7"]
    finally:
        store.close()


def test_queries_use_the_indexes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plan.db")
    store.open()
    try:
        conn = store._conn()

        def plan(sql: str) -> str:
            return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))

        assert "COVERING INDEX inspections_line_ts" in plan(
            "SELECT count(*), sum(reject) FROM inspections WHERE ts_ms >= 1 AND ts_ms < 2 AND line = 'a'")
        assert "COVERING INDEX inspections_ts" in plan(
            "SELECT line, count(*), sum(reject) FROM inspections WHERE ts_ms >= 1 AND ts_ms < 2 GROUP BY line")
        assert "inspections_line_rejects" in plan(
            "SELECT event_id FROM inspections i WHERE i.reject = 1 AND i.line = 'a' ORDER BY ts_ms DESC, event_id DESC"
            " LIMIT 5")
        assert "COVERING INDEX reject_defects_line_ts" in plan(
            "SELECT label, count(*), count(DISTINCT event_id) FROM reject_defects WHERE ts_ms >= 1 AND ts_ms < 2"
            " AND line = 'a' GROUP BY label")
    finally:
        store.close()


def test_inspections_published_over_mqtt_are_counted(tmp_path: Path, broker: MosquittoBroker) -> None:
    now = time.time_ns() // 1_000_000
    with ApiServer(settings_for(tmp_path, broker)) as server, Publisher(broker) as publisher:
        wait_until(lambda: server.get("/health")["mqtt"]["connected"], 10, "ingest to connect")
        for seq, verdict in enumerate(["pass", "reject", "pass", "reject"], start=1):
            publisher.event(inspection_payload("line-9", now - 1000 * seq, verdict, seq=seq,
                                               defects=[("scratches", 0.9, (0.1, 0.1, 0.2, 0.2))]))

        def four_parts() -> dict | None:
            response = server.client.get("/qa/summary", params={"line": "line-9"})
            return response.json() if response.status_code == 200 and response.json()["parts"] == 4 else None

        summary = wait_until(four_parts, 10, "4 inspected parts")
        assert (summary["rejects"], summary["defects"]) == (2, [{"label": "scratches", "count": 2, "parts": 2}])
        assert [line["id"] for line in server.get("/lines")] == ["line-9"]


def test_buckets_follow_the_sites_local_clock(tmp_path: Path) -> None:
    """Asia/Kolkata is UTC+05:30: a day bucket starts at local midnight (18:30 UTC), an hour bucket at :30 UTC."""
    day, hour = 24 * 60 * MIN, 60 * MIN
    local_midnight = 1_700_073_000_000  # 2023-11-16 00:00 +05:30 = 2023-11-15 18:30 UTC
    # 23:50 and 00:10 local (one part each side of midnight), then 06:00 local the next morning
    times = [local_midnight - 10 * MIN, local_midnight + 10 * MIN, local_midnight + 6 * hour]
    store = SqliteStore(tmp_path / "tz.db")
    store.open()
    try:
        store.write_events([inspection("line-1", ts, "reject" if i == 0 else "pass", seq=i + 1,
                                       defects=[("crazing", 0.8, (0, 0, 1, 1))] if i == 0 else None)
                            for i, ts in enumerate(times)], times[-1])
        window = QaService.window(0, local_midnight - 12 * hour, local_midnight + 12 * hour)
        local = QaService(store, "Asia/Kolkata")
        assert local.utc_offset_ms(local_midnight) == 5 * hour + 30 * MIN
        points = local.trend("line-1", window, day)
        assert [(p.ts_ms, p.parts, p.rejects) for p in points] == [
            (local_midnight - day, 1, 1), (local_midnight, 2, 0)]
        hourly = [(p.ts_ms, p.parts) for p in local.trend("line-1", window, hour) if p.parts]
        assert hourly == [(local_midnight - hour, 1), (local_midnight, 1), (local_midnight + 6 * hour, 1)]
        assert [p.ts_ms for p in local.trend("line-1", window, day)] == local.pchart("line-1", window, day).timestamps
        # in UTC both parts around local midnight fall into the UTC day that started 18.5 h earlier
        utc = QaService(store, "UTC").trend("line-1", window, day)
        assert [(p.ts_ms % day, p.parts) for p in utc] == [(0, 2), (0, 1)]
    finally:
        store.close()
