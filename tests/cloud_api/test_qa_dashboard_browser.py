"""The QA dashboard in a real headless Chromium: login, charts drawn from seeded data, a live MQTT event.

Needs ``apt-get install -y chromium chromium-driver`` and ``pip install selenium``; a missing piece is a test
failure with that instruction, never a skip. Leaves a 1920x1080 screenshot in test-artifacts/qa_dashboard.png.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from cloud_api.services.qa import auto_bucket_ms
from cloud_api.services.users import create_user
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import PASSWORD, TOKEN, ApiServer, Publisher, settings_for, wait_until
from tests.cloud_api.qa_builders import inspection, inspection_payload
from tests.support.mosquitto import MosquittoBroker

CHROMIUM = Path(os.environ.get("FIELDLINE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("FIELDLINE_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

BUCKET = auto_bucket_ms(8 * 3600_000)  # what the page asks for with the default 8 h window (10 min)
SUBGROUPS = 16  # line-1: 16 complete buckets before the current one
SIZES = [30, 24, 30, 36, 30, 24, 30, 36, 30, 24, 30, 36, 30, 24, 30, 36]
REJECTS = [1, 0, 2, 1, 1, 1, 0, 2, 1, 9, 1, 1, 0, 2, 1, 1]  # subgroup 9 drifts out of control
LABELS = ["scratches", "inclusion", "scratches", "patches", "crazing", "scratches", "inclusion"]


def _require_browser() -> tuple[Any, Any, Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"headless browser test needs {', '.join(missing)}: apt-get install -y chromium chromium-driver",
                    pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        pytest.fail("headless browser test needs Selenium: pip install selenium", pytrace=False)
    return webdriver, Service, By


def steel_jpeg(seed: int, box: tuple[float, float, float, float]) -> bytes:
    """A 640x480 brushed-steel picture with a dark defect inside ``box`` (normalised)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(150, 12, size=(480, 1)).astype(np.float32)
    image = np.clip(rows + rng.normal(0, 6, size=(480, 640)), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = (int(box[0] * 640), int(box[1] * 480), int(box[2] * 640), int(box[3] * 480))
    cv2.line(image, (x1 + 4, y1 + 4), (x2 - 4, y2 - 4), 60, 3)
    cv2.ellipse(image, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 4, (y2 - y1) // 5), 20, 0, 360, 90, -1)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return jpeg.tobytes()


def seed(store: SqliteStore, now_ms: int) -> dict[str, int]:
    current = (now_ms // BUCKET) * BUCKET
    events: list[Event] = []
    snapshots: list[tuple[str, bytes]] = []
    seq = reject_no = 0
    for k, (n, d) in enumerate(zip(SIZES, REJECTS, strict=True)):
        start = current - (SUBGROUPS - k) * BUCKET
        for j in range(n):
            seq += 1
            ts = start + j * (BUCKET // n)
            if j < d:
                box = (0.15 + 0.04 * (reject_no % 5), 0.2, 0.55 + 0.05 * (reject_no % 4), 0.7)
                defects = [(LABELS[reject_no % len(LABELS)], 0.7 + 0.02 * (reject_no % 10), box)]
                snapshot = f"snap-{seq}"
                snapshots.append((snapshot, steel_jpeg(seq, box)))
                events.append(inspection("line-1", ts, "reject", seq=seq, defects=defects, snapshot=snapshot))
                reject_no += 1
            else:
                events.append(inspection("line-1", ts, "pass", seq=seq))
    for k in range(6):  # line-2: a quieter line on another device
        events.append(inspection("line-2", current - (k + 1) * BUCKET, "reject" if k == 2 else "pass", seq=k + 1,
                                 device="cam-box-2", defects=[("pitted_surface", 0.8, (0.3, 0.3, 0.5, 0.6))]))
    store.write_events(events, now_ms)
    for snapshot_id, jpeg in snapshots:
        store.write_snapshot("site-a", "cam-box-1", snapshot_id, jpeg, now_ms)
    return {"parts": sum(SIZES), "rejects": sum(REJECTS), "seq": seq}


@pytest.fixture
def dashboard(tmp_path: Path, broker: MosquittoBroker) -> Iterator[tuple[ApiServer, dict[str, int], MosquittoBroker]]:
    now = time.time_ns() // 1_000_000
    with ApiServer(settings_for(tmp_path, broker)) as api:
        store: SqliteStore = api.server.config.app.state.store
        create_user(store, "qa-lead", PASSWORD, "viewer")
        seeded = seed(store, now)
        wait_until(lambda: api.get("/health")["mqtt"]["connected"], 10, "ingest to connect")
        yield api, seeded, broker


def open_browser() -> Any:
    """A new headless Chromium (its own profile: cookies of its own) with a 1920x1080 viewport."""
    webdriver, service_class, _ = _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1920,1080", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=service_class(executable_path=str(CHROMEDRIVER)), options=options)
    # the viewport itself is 1920x1080, like a wall screen in kiosk mode
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    return browser


@pytest.fixture
def driver() -> Iterator[Any]:
    browser = open_browser()
    try:
        yield browser
    finally:
        browser.quit()


def _text(browser: Any, element_id: str) -> str:
    return browser.execute_script(f"return document.getElementById('{element_id}').textContent.trim()")


def _count(browser: Any, selector: str) -> int:
    return int(browser.execute_script(f"return document.querySelectorAll({selector!r}).length"))


def test_dashboard_logs_in_draws_charts_and_updates_live(
    dashboard: tuple[ApiServer, dict[str, int], MosquittoBroker], driver: Any
) -> None:
    api, seeded, broker = dashboard
    _, _, by = _require_browser()
    driver.get(f"{api.root}/qa#line=line-1&window=8h")

    # not signed in: the login form, then a wrong and a right password
    wait_until(lambda: driver.find_element(by.ID, "login-form").is_displayed(), 10, "the login form")
    driver.find_element(by.ID, "login-user").send_keys("qa-lead")
    driver.find_element(by.ID, "login-pass").send_keys("wrong password")
    driver.find_element(by.ID, "login-submit").click()
    wait_until(lambda: "Wrong" in _text(driver, "login-error"), 10, "the login error")
    driver.find_element(by.ID, "login-pass").clear()
    driver.find_element(by.ID, "login-pass").send_keys(PASSWORD)
    driver.find_element(by.ID, "login-submit").click()
    wait_until(lambda: driver.find_element(by.ID, "dashboard").is_displayed(), 10, "the dashboard")
    # signed in by an HttpOnly cookie: nothing the page's script (or an injected one) could read or send away
    session = driver.get_cookie("fieldline_session")
    assert session and session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]  # http here
    assert "fieldline_session" not in driver.execute_script("return document.cookie")
    assert driver.execute_script("return sessionStorage.length + localStorage.length") == 0
    wait_until(lambda: int(driver.execute_script("return document.body.dataset.refreshes || 0")) >= 1, 15,
               "the first data load")

    # KPI cards
    parts, rejects = seeded["parts"], seeded["rejects"]
    assert _text(driver, "kpi-parts") == f"{parts:,}"
    assert _text(driver, "kpi-rejects") == str(rejects)
    assert _text(driver, "kpi-rate") == f"{rejects / parts * 100:.2f} %"
    assert _text(driver, "kpi-ooc") == "1"
    assert _text(driver, "kpi-top").startswith("scratches")
    assert driver.find_element(by.ID, "line-select").get_attribute("value") == "line-1"
    assert _count(driver, ".line-tile") == 2

    # charts: one point per non-empty bucket, one bar per defect class, the drift in red
    assert _count(driver, "#trend-chart .trend-point") == SUBGROUPS
    assert _count(driver, "#trend-chart .trend-bar") == SUBGROUPS
    classes = len({LABELS[i % len(LABELS)] for i in range(rejects)})
    assert _count(driver, "#pareto-chart .pareto-bar") == classes
    assert _count(driver, "#pareto-chart .pareto-cum-point") == classes
    assert _count(driver, "#pchart .pchart-point") == SUBGROUPS
    assert _count(driver, "#pchart .pchart-point.flagged") == 1
    assert _count(driver, "#pchart .pchart-ucl") == 1 and _count(driver, "#pchart .pchart-lcl") == 1
    flagged_title = driver.execute_script(
        "return document.querySelector('#pchart .pchart-point.flagged title').textContent")
    assert "beyond_3sigma" in flagged_title
    ucl_steps = driver.execute_script("return document.querySelector('#pchart .pchart-ucl').getAttribute('d')")
    assert len({segment.split(",")[1] for segment in ucl_steps.split("L")[1:]}) == 3  # n = 24, 30, 36

    # the gallery: newest rejects with their JPEG drawn and the boxes over it
    wait_until(lambda: _count(driver, "#gallery canvas[data-image='yes']") == 12, 15, "12 snapshot images")
    assert driver.execute_script("return document.querySelector('#gallery canvas').dataset.boxes") == "1"
    assert "/api/v1/qa/export.csv?" in driver.find_element(by.ID, "export-link").get_attribute("href")
    wait_until(lambda: "live" in _text(driver, "live-status"), 10, "the WebSocket")

    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "qa_dashboard.png"))

    # a part rejected right now, published over MQTT, shows up without a reload
    driver.execute_script("window.__noReload = 42")
    first_card = driver.execute_script("return document.querySelector('#gallery .reject-card').dataset.eventId")
    with Publisher(broker) as publisher:
        payload = inspection_payload("line-1", time.time_ns() // 1_000_000, "reject", seq=seeded["seq"] + 1,
                                     defects=[("scratches", 0.97, (0.4, 0.4, 0.6, 0.6))])
        publisher.event(payload)
    wait_until(lambda: _text(driver, "kpi-rejects") == str(rejects + 1), 15, "the live reject in the KPI")
    assert _text(driver, "kpi-parts") == f"{parts + 1:,}"
    assert driver.execute_script("return window.__noReload") == 42
    assert int(driver.execute_script("return document.body.dataset.liveEvents")) >= 1
    assert _count(driver, "#pchart .pchart-point") == SUBGROUPS + 1  # the current bucket joined
    newest = driver.execute_script("return document.querySelector('#gallery .reject-card')")
    assert newest.get_attribute("data-event-id") == payload["id"] != first_card
    assert "new" in newest.get_attribute("class")
    driver.save_screenshot(str(ARTIFACTS / "qa_dashboard_live.png"))

    # the page signs out: the cookie goes, and the token behind it no longer opens anything
    driver.find_element(by.ID, "logout").click()
    wait_until(lambda: driver.find_element(by.ID, "login-form").is_displayed(), 10, "the login form after sign-out")
    wait_until(lambda: driver.get_cookie("fieldline_session") is None, 5, "the cookie to be cleared")
    assert httpx.get(f"{api.root}/api/v1/auth/me", cookies={"fieldline_session": session["value"]}).status_code == 401

    # a token in the address bar signs nothing in any more
    driver.get(f"{api.root}/qa?token={TOKEN}")
    wait_until(lambda: driver.find_element(by.ID, "login-form").is_displayed(), 10, "the login form, ?token= ignored")
    assert driver.get_cookie("fieldline_session") is None

    # a kiosk opens a one-time sign-in link: no login form, no code left in the address bar, the view kept
    link = api.client.post("/auth/signin-links", json={"username": "qa-lead"})
    assert link.status_code == 201 and link.json()["path"].startswith("/signin/")
    driver.get(f"{api.root}{link.json()['path']}#line=line-2&window=24h")
    wait_until(lambda: driver.find_element(by.ID, "dashboard").is_displayed(), 10, "the kiosk dashboard")
    wait_until(lambda: _text(driver, "kpi-parts") == "6", 15, "line-2 numbers")
    assert driver.current_url == f"{api.root}/qa#line=line-2&window=24h"
    assert _text(driver, "kpi-rejects") == "1" and _text(driver, "user-name") == "qa-lead (viewer)"
    wait_until(lambda: "live" in _text(driver, "live-status"), 10, "the WebSocket on the cookie")
    # the same link a second time: used up
    driver.delete_all_cookies()
    driver.get(f"{api.root}{link.json()['path']}")
    assert "used or expired" in driver.find_element(by.TAG_NAME, "h1").text
    assert driver.get_cookie("fieldline_session") is None
