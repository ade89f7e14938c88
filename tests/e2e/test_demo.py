"""`fieldline demo` as a real subprocess: embedded broker, API, simulated sheds and inspection lines.

One run checks what a new user sees in the first minute: every shed counted, the printed addresses and demo
login working, the home page linking /docs and /qa, the QA data filling (inspections, rejects with evidence
images, a Pareto), the first drift (``defect_rate_high`` or a flagged p-chart subgroup), the phone app's own
overview controller colouring sheds amber and red, and the alerts behind them, and every shed's climate
(two sensor payload styles, a week of history) feeding its forecast. Ctrl-C (SIGINT) then stops
everything with exit code 0.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from mobile_app.cache import OfflineCache
from mobile_app.controllers import Session
from mobile_app.controllers.overview import OverviewController
from tests.support.live_api import free_port, wait_until

pytestmark = pytest.mark.e2e
SHEDS = 8
DEADLINE_S = 120  # from the start of the demo: the first drift alert comes ~45 s after it on a quiet machine


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.add(href)


def _hrefs(page: str) -> set[str]:
    parser = _Hrefs()
    parser.feed(page)
    return parser.hrefs


def test_demo_fills_sheds_and_lines_prints_every_address_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    api_port, mqtt_port = free_port(), free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldline.cli", "demo", "--data-dir", str(tmp_path), "--api-port", str(api_port),
         "--mqtt-port", str(mqtt_port), "--sheds", str(SHEDS), "--duration", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )

    def left() -> float:
        return max(1.0, DEADLINE_S - (time.monotonic() - started))

    try:
        saved = tmp_path / "demo.json"
        info = wait_until(lambda: saved.exists() and json.loads(saved.read_text()), timeout=60, what="demo.json")
        assert set(info) >= {"api_url", "token", "mqtt_host", "mqtt_port", "user", "password", "qa_url",
                             "qa_signin_url", "docs_url", "app_command"}
        assert info["mqtt_port"] == mqtt_port
        api = info["api_url"]
        admin = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {info['token']}"}, timeout=10)
        assert httpx.get(f"{api}/api/v1/health").status_code == 200
        assert httpx.get(f"{api}/api/v1/sheds").status_code == 401

        # the home page links the docs and the dashboard, and both answer
        assert {"/docs", "/qa"} <= _hrefs(httpx.get(f"{api}/").text)
        assert httpx.get(info["docs_url"]).status_code == 200 and httpx.get(info["qa_url"]).status_code == 200

        # the printed login signs in (as the dashboard does); the one-time link carries no token and signs a
        # browser in once (session cookie), then is used up
        login = httpx.post(f"{api}/api/v1/auth/login", json={"username": info["user"], "password": info["password"]})
        assert login.status_code == 200 and login.json()["role"] == "operator"
        assert info["user_token"] not in info["qa_signin_url"] and "token=" not in info["qa_signin_url"]
        opened = httpx.get(info["qa_signin_url"].split("#", 1)[0])
        assert opened.status_code == 303 and opened.headers["location"] == "/qa"
        me = httpx.get(f"{api}/api/v1/auth/me", cookies={"fieldline_session": opened.cookies["fieldline_session"]})
        assert me.status_code == 200 and me.json()["username"] == info["user"]
        assert httpx.get(info["qa_signin_url"].split("#", 1)[0]).status_code == 400  # used up
        link_token = info["user_token"]
        assert f"--token {link_token}" in info["app_command"]

        def counted_sheds() -> set[str]:
            return {s["id"] for s in admin.get("/api/v1/sheds").json() if sum(s["counts"].values()) > 0}

        wait_until(lambda: counted_sheds() == {f"shed-{n:02d}" for n in range(1, SHEDS + 1)}, timeout=left(),
                   what=f"all {SHEDS} sheds counted")

        # climate: a FieldLine probe (odd sheds) and a Zigbee2MQTT sensor (even sheds), with their history, and
        # the forecast on the temperature forecast the demo gave
        def climate_in(shed: str) -> dict | None:
            data = admin.get(f"/api/v1/sheds/{shed}/climate").json()
            return data if min(len(data["temperature"]), len(data["humidity"])) >= 6 * 24 else None  # most hours

        for shed, sensor in (("shed-01", "probe-shed-01"), ("shed-02", "z2m-shed-02")):
            climate = wait_until(lambda shed=shed: climate_in(shed), timeout=left(), what=f"{shed}'s climate week")
            assert {s["sensor"] for s in climate["sensors"]} == {sensor}
            assert admin.get(f"/api/v1/sheds/{shed}/forecast").json()["temperature_source"] == "forecast"

        # QA: inspections with rejects, their evidence pictures and the Pareto of defect classes
        def qa_filled() -> dict | None:
            summary = admin.get("/api/v1/qa/summary").json()
            return summary if summary["parts"] >= 30 and summary["rejects"] >= 3 else None

        summary = wait_until(qa_filled, timeout=left(), interval=1, what="30 inspected parts with rejects")
        assert {line["id"] for line in admin.get("/api/v1/lines").json()} == {"line-1", "line-2"}
        gallery = admin.get("/api/v1/qa/rejects").json()["items"]
        assert gallery and gallery[0]["defects"]
        with_snapshot = [r for r in gallery if r["snapshot"]]
        picture = admin.get(f"/api/v1/snapshots/{with_snapshot[0]['snapshot']}")
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        pareto = admin.get("/api/v1/qa/pareto").json()
        assert pareto["total"] >= summary["rejects"] and pareto["items"][-1]["cumulative"] == pytest.approx(1.0)

        # the phone app's own overview controller: the big shed amber (pick soon), the flaky camera's shed red
        session = Session(OfflineCache(tmp_path / "phone" / "cache.db"), api_url=api, token=link_token)
        overview = OverviewController(session)

        def colours() -> dict[str, str] | None:
            found = {t.id: overview.urgency(t) for t in overview.load().tiles}
            return found if found.get("shed-01") == "pick" and found.get("shed-02") == "alarm" else None

        try:
            urgency = wait_until(colours, timeout=left(), interval=1, what="shed-01 amber and shed-02 red in the app")
            tiles = {t.id: t for t in overview.load().tiles}
        finally:
            session.cache.close()
        assert list(urgency.values()).count("ok") >= SHEDS - 3  # the other sheds stay green
        assert tiles["shed-01"].pick_ready >= overview.pick_threshold

        # the alerts behind the colours, and the drift on the steel line
        def drift_seen() -> str | None:
            codes = {(a["code"], a["zone"]["id"]) for a in admin.get("/api/v1/alerts").json()}
            if ("defect_rate_high", "line-1") in codes:
                return "defect_rate_high alert"
            chart = admin.get("/api/v1/qa/pchart", params={"line": "line-1", "bucket": 15_000}).json()
            rising = [p for p in chart["points"] if p["flagged"] and p["z"] > 0]  # more rejects, not fewer
            return "p-chart signal" if rising else None

        evidence = wait_until(drift_seen, timeout=left(), interval=1, what="the drift on line-1 (alert or SPC signal)")
        alerts = {(a["code"], a["zone"]["id"]): a for a in admin.get("/api/v1/alerts").json()}
        assert alerts[("camera_offline", "shed-02")]["severity"] == "critical"
        assert alerts[("overripe", "shed-01")]["severity"] == "warning"
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output
    print(f"demo filled in {took:.0f} s; drift seen as {evidence}")
    for printed in (info["api_url"], info["token"], info["docs_url"], info["qa_url"], info["qa_signin_url"],
                    f"user {info['user']}", f"password {info['password']}", info["app_command"]):
        assert printed in output, printed
