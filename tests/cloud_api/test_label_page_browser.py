"""The labelling page ``/label`` and the /qa "mark as wrong" action in a real headless Chromium, against the real
API (uvicorn, SQLite, the datasets routes): the model's boxes pre-filled, boxes drawn, moved and resized with the
mouse, class keys, delete, accept, skip and next from the keyboard; what was drawn is what the API stored; two
operators in two browsers get different frames and a stale save shows the conflict; a viewer is told they cannot
label; the page renews its lease and says so when the lease was lost.

Uses the QA dashboard test's browser (``driver``, ``open_browser``). Screenshots: test-artifacts/label_*.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cloud_api.services.users import create_user
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, login, settings_for, wait_until
from tests.cloud_api.qa_builders import inspection
from tests.cloud_api.test_qa_dashboard_browser import (  # noqa: F401 (driver is a fixture)
    ARTIFACTS,
    _require_browser,
    driver,
    open_browser,
    steel_jpeg,
)

DATASET = "tomato-ripeness"
CLASSES = ["ripe", "half_ripe", "green"]
FRUITS = [  # (class, centre x, centre y, radius) in a 640x480 picture
    ("ripe", 150, 170, 62), ("half_ripe", 330, 260, 58), ("green", 500, 150, 50), ("ripe", 470, 360, 55)]
TOL = 0.004  # normalised: about 3 screen pixels on the ~1000 px wide picture


def greenhouse_jpeg(seed: int) -> bytes:
    """A 640x480 picture: leaves and four tomatoes (red, orange, green)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((480, 640, 3), np.uint8)
    image[:] = (40, 95, 45)
    for _ in range(60):
        x, y = int(rng.integers(0, 640)), int(rng.integers(0, 480))
        cv2.ellipse(image, (x, y), (int(rng.integers(15, 40)), int(rng.integers(6, 14))), float(rng.integers(0, 180)),
                    0, 360, (30, int(rng.integers(110, 160)), 40), -1)
    colours = {"ripe": (40, 40, 200), "half_ripe": (40, 140, 235), "green": (60, 170, 90)}
    for label, x, y, r in FRUITS:
        cv2.circle(image, (x, y), r, colours[label], -1)
        cv2.circle(image, (x - r // 3, y - r // 3), r // 5, (235, 235, 235), -1)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return jpeg.tobytes()


def predictions(k: int) -> list[dict[str, Any]]:
    """The model's boxes for frame k: the first two fruits, a little off (that is why it is being labelled)."""
    out = []
    for i, (label, x, y, r) in enumerate(FRUITS[:2]):
        shift = 0.02 * ((k + i) % 3)
        out.append({"label": label, "score": 0.55 + 0.1 * i,
                    "box": [round((x - r) / 640 + shift, 4), round((y - r) / 480, 4),
                            round((x + r) / 640 + shift, 4), round((y + r) / 480, 4)]})
    return out


@pytest.fixture
def label_api(tmp_path: Path) -> Iterator[tuple[ApiServer, list[str]]]:
    with ApiServer(settings_for(tmp_path)) as api:
        store: SqliteStore = api.server.config.app.state.store
        for user, role in (("alice", "operator"), ("bob", "operator"), ("vic", "viewer")):
            create_user(store, user, PASSWORD, role)
        created = api.client.post("/datasets", json={"name": DATASET, "labels": CLASSES})
        assert created.status_code == 201, created.text
        ids = []
        for k in range(4):
            meta = {"source": {"site": "farm", "device": "edge-01", "camera": "cam-1", "ts_ms": 1_765_000_000_000 + k,
                               "zone": {"kind": "shed", "id": "shed-01", "row": "r1"},
                               "model": {"name": DATASET, "version": "1.0.0"}},
                    "reason": "uncertain_score", "predictions": predictions(k), "split": "train", "id": f"f{k + 1}"}
            pushed = api.client.post(f"/datasets/{DATASET}/frames",
                                     files={"image": ("f.jpg", greenhouse_jpeg(k), "image/jpeg"),
                                            "meta": (None, json.dumps(meta), "application/json")})
            assert pushed.status_code == 201, pushed.text
            ids.append(pushed.json()["id"])
        yield api, ids


# ---------------------------------------------------------------- page helpers

def js(browser: Any, script: str) -> Any:
    return browser.execute_script(script)


def body(browser: Any, key: str) -> str:
    return str(js(browser, f"return document.body.dataset.{key} || ''"))


def sign_in(browser: Any, url: str, user: str) -> None:
    _, _, by = _require_browser()
    browser.get(url)
    wait_until(lambda: browser.find_element(by.ID, "login-form").is_displayed(), 10, "the login form")
    browser.find_element(by.ID, "login-user").send_keys(user)
    browser.find_element(by.ID, "login-pass").send_keys(PASSWORD)
    browser.find_element(by.ID, "login-submit").click()


class Picture:
    """Where the frame's picture is on the screen: normalised box coordinates <-> viewport pixels."""

    def __init__(self, browser: Any) -> None:
        stage = js(browser, "const r = document.getElementById('stage').getBoundingClientRect(); return [r.left, r.top]")
        area = [float(v) for v in js(browser, "return document.getElementById('stage').dataset.area").split(",")]
        self.left, self.top = stage
        self.x, self.y, self.w, self.h = area

    def screen(self, nx: float, ny: float) -> tuple[int, int]:
        return round(self.left + self.x + nx * self.w), round(self.top + self.y + ny * self.h)

    def norm(self, sx: int, sy: int) -> tuple[float, float]:
        return (sx - self.left - self.x) / self.w, (sy - self.top - self.y) / self.h


def drag(browser: Any, start: tuple[int, int], end: tuple[int, int], steps: int = 6) -> None:
    """A real mouse drag (pointer down, moves, up) through WebDriver actions, in viewport pixels."""
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(browser, duration=20)
    pointer = chain.w3c_actions.pointer_action
    pointer.move_to_location(*start)
    pointer.pointer_down()
    for i in range(1, steps + 1):
        pointer.move_to_location(round(start[0] + (end[0] - start[0]) * i / steps),
                                 round(start[1] + (end[1] - start[1]) * i / steps))
    pointer.pointer_up()
    chain.perform()


def click(browser: Any, at: tuple[int, int]) -> None:
    drag(browser, at, at, steps=1)


def keys(browser: Any, *pressed: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    for key in pressed:
        ActionChains(browser).send_keys(key).perform()


def page_boxes(browser: Any) -> list[tuple[str, list[float]]]:
    rows = js(browser, "return [...document.querySelectorAll('#box-list li[data-box]')].map(li => [li.dataset.label, li.dataset.box])")
    return [(label, [float(v) for v in box.split(",")]) for label, box in rows]


def assert_boxes(actual: list[dict[str, Any]] | list[tuple[str, list[float]]], expected: list[tuple[str, list[float]]]) -> None:
    pairs = [(b["label"], b["box"]) if isinstance(b, dict) else b for b in actual]
    assert len(pairs) == len(expected), (pairs, expected)
    for (label, box), (want_label, want_box) in zip(pairs, expected, strict=True):
        assert label == want_label, (pairs, expected)
        assert box == pytest.approx(want_box, abs=TOL), (label, box, want_box)


# ---------------------------------------------------------------- tests

def test_label_a_frame_with_mouse_and_keyboard_and_the_api_stores_what_was_drawn(label_api, driver) -> None:  # noqa: F811
    api, ids = label_api
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(driver, f"{api.root}/label", "alice")
    wait_until(lambda: body(driver, "frame") == ids[0], 15, "the first frame leased to alice")
    assert driver.current_url.endswith(f"/label#dataset={DATASET}&frame={ids[0]}")
    # the model's boxes are pre-filled; the frame is held by alice; the dataset's stats are shown
    first = api.get(f"/datasets/{DATASET}/frames/{ids[0]}")
    assert first["lease"]["user"] == "alice" and first["version"] == 1
    wait_until(lambda: js(driver, "return document.querySelector('#stage canvas') !== null"), 5, "the Konva canvas")
    assert_boxes(page_boxes(driver), [(p["label"], p["box"]) for p in first["predictions"]])
    assert js(driver, "return document.getElementById('lease').textContent").startswith("held by you until")
    assert js(driver, "return document.querySelector('[data-stat=new]').textContent") == "4"
    assert js(driver, "return [...document.querySelectorAll('.class-button')].map(b => b.dataset.label)") == CLASSES
    driver.save_screenshot(str(ARTIFACTS / "label_prefilled.png"))
    pic = Picture(driver)
    expected = [(p["label"], list(p["box"])) for p in first["predictions"]]

    # class key 3 (green), then draw a box by dragging on an empty part of the picture
    keys(driver, "3")
    assert body(driver, "cls") == "green"
    start, end = pic.screen(0.66, 0.12), pic.screen(0.9, 0.45)
    drag(driver, start, end)
    wait_until(lambda: body(driver, "boxes") == "3", 5, "the drawn box")
    expected.append(("green", [*pic.norm(*start), *pic.norm(*end)]))

    # move the first box: drag from inside it
    b0 = expected[0][1]
    grab = pic.screen((b0[0] + b0[2]) / 2, (b0[1] + b0[3]) / 2)
    to = (grab[0] + 40, grab[1] + 25)
    drag(driver, grab, to)
    dx, dy = 40 / pic.w, 25 / pic.h
    expected[0] = (expected[0][0], [b0[0] + dx, b0[1] + dy, b0[2] + dx, b0[3] + dy])
    wait_until(lambda: page_boxes(driver)[0][1] == pytest.approx(expected[0][1], abs=TOL), 5, "the moved box")

    # resize the second box: select it, then drag its bottom-right handle out
    b1 = expected[1][1]
    click(driver, pic.screen(b1[0] + 0.02, b1[1] + 0.02))
    wait_until(lambda: body(driver, "selected") == "1", 5, "the second box selected")
    corner = pic.screen(b1[2], b1[3])
    drag(driver, corner, (corner[0] + 30, corner[1] + 20))
    new_x2, new_y2 = pic.norm(corner[0] + 30, corner[1] + 20)
    expected[1] = (expected[1][0], [b1[0], b1[1], new_x2, new_y2])
    wait_until(lambda: page_boxes(driver)[1][1] == pytest.approx(expected[1][1], abs=TOL), 5, "the resized box")
    # and change its class with key 1 (it stays selected after the resize)
    keys(driver, "1")
    expected[1] = ("ripe", expected[1][1])
    assert page_boxes(driver)[1][0] == "ripe"

    # a stray box, drawn and deleted again with the Delete key
    drag(driver, pic.screen(0.05, 0.8), pic.screen(0.2, 0.95))
    wait_until(lambda: body(driver, "boxes") == "4", 5, "the stray box")
    from selenium.webdriver.common.keys import Keys

    keys(driver, Keys.DELETE)
    wait_until(lambda: body(driver, "boxes") == "3", 5, "the stray box deleted")
    assert_boxes(page_boxes(driver), expected)
    driver.save_screenshot(str(ARTIFACTS / "label_edited.png"))

    # Enter accepts: the API has exactly what was drawn, and the next frame opens
    keys(driver, Keys.ENTER)
    wait_until(lambda: body(driver, "frame") == ids[1], 10, "the next frame after accepting")
    saved = api.get(f"/datasets/{DATASET}/frames/{ids[0]}")
    assert saved["status"] == "labelled" and saved["labelled_by"] == "alice" and saved["version"] == 2
    assert saved["lease"] is None
    assert_boxes(saved["labels"], expected)
    assert "Saved frame f1: 3 boxes." in js(driver, "return document.getElementById('message').textContent")

    # S skips (no labels), N and the right arrow move on without saving
    keys(driver, "s")
    wait_until(lambda: body(driver, "frame") == ids[2], 10, "the frame after skipping")
    skipped = api.get(f"/datasets/{DATASET}/frames/{ids[1]}")
    assert skipped["status"] == "skipped" and skipped["labels"] == [] and skipped["labelled_by"] == "alice"
    keys(driver, "n")
    wait_until(lambda: body(driver, "frame") == ids[3], 10, "the frame after N")
    keys(driver, Keys.ARROW_RIGHT)
    wait_until(lambda: body(driver, "frame") == ids[2], 10, "back round to the frame left unsaved")
    assert api.get(f"/datasets/{DATASET}/frames/{ids[2]}")["status"] == "new"
    assert api.get(f"/datasets/{DATASET}/frames/{ids[3]}")["lease"] is None  # alice let go of it
    wait_until(lambda: js(driver, "return document.querySelector('[data-stat=labelled]').textContent") == "1", 5,
               "the stats refreshed")
    assert js(driver, "return document.querySelector('[data-stat=skipped]').textContent") == "1"
    driver.save_screenshot(str(ARTIFACTS / "label_next.png"))


def test_two_operators_get_different_frames_and_a_stale_save_shows_the_conflict(label_api, driver) -> None:  # noqa: F811
    api, ids = label_api
    from selenium.webdriver.common.keys import Keys

    ARTIFACTS.mkdir(exist_ok=True)
    other = open_browser()
    try:
        sign_in(driver, f"{api.root}/label", "alice")
        wait_until(lambda: body(driver, "frame") == ids[0], 15, "alice's frame")
        sign_in(other, f"{api.root}/label", "bob")
        wait_until(lambda: body(other, "frame") == ids[1], 15, "bob's frame: not the one alice holds")
        assert api.get(f"/datasets/{DATASET}/frames/{ids[1]}")["lease"]["user"] == "bob"

        # bob opens alice's frame by its address: the page says who holds it; he deletes a box and saves
        other.get(f"{api.root}/label#dataset={DATASET}&frame={ids[0]}")
        wait_until(lambda: body(other, "frame") == ids[0] and body(other, "boxes") == "2", 15, "alice's frame for bob")
        lease = js(other, "return document.getElementById('lease')")
        assert lease.text.startswith("held by alice until") and "other" in lease.get_attribute("class")
        other.save_screenshot(str(ARTIFACTS / "label_held_by_other.png"))
        pic = Picture(other)
        b0 = api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["predictions"][0]["box"]
        click(other, pic.screen(b0[0] + 0.02, b0[1] + 0.02))
        wait_until(lambda: body(other, "selected") == "0", 5, "bob selected the first box")
        keys(other, Keys.DELETE, Keys.ENTER)
        wait_until(lambda: api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["version"] == 2, 10, "bob's save")
        # alice's page hears of it over the WebSocket: its stats change without her doing anything
        wait_until(lambda: js(driver, "return document.querySelector('[data-stat=labelled]').textContent") == "1", 10,
                   "alice's stats updated live")

        # alice, still on version 1, draws a box and accepts: 409, told so, and shown bob's boxes
        pic = Picture(driver)
        drag(driver, pic.screen(0.66, 0.12), pic.screen(0.9, 0.45))
        wait_until(lambda: body(driver, "boxes") == "3", 5, "alice's new box")
        keys(driver, Keys.ENTER)
        wait_until(lambda: body(driver, "conflicts") == "1", 10, "the conflict")
        message = js(driver, "return document.getElementById('message').textContent")
        assert message.startswith("Someone else saved frame f1 first (bob): your changes were not saved."), message
        assert body(driver, "frame") == ids[0] and body(driver, "version") == "2" and body(driver, "boxes") == "1"
        assert js(driver, "return document.getElementById('lease').textContent") == "labelled by bob"
        assert js(driver, "return document.querySelector('#box-list .score').textContent") == "saved"
        driver.save_screenshot(str(ARTIFACTS / "label_conflict.png"))
        stored = api.get(f"/datasets/{DATASET}/frames/{ids[0]}")
        assert stored["labelled_by"] == "bob" and len(stored["labels"]) == 1  # alice's stale save changed nothing

        # having seen bob's boxes, alice accepts them: now on the current version, it goes through
        keys(driver, Keys.ENTER)
        wait_until(lambda: api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["version"] == 3, 10, "alice's second save")
        assert api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["labelled_by"] == "alice"
    finally:
        other.quit()


def test_a_viewer_cannot_label_and_a_lost_lease_is_said(label_api, driver) -> None:  # noqa: F811
    api, ids = label_api
    _, _, by = _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    message = "return document.getElementById('message').textContent"
    sign_in(driver, f"{api.root}/label", "vic")
    wait_until(lambda: "cannot" in js(driver, message) or "not label" in js(driver, message), 15, "the viewer's message")
    assert js(driver, message) == "Your role (viewer) can see the datasets but not label them: an operator or admin can."
    assert body(driver, "frame") == "" and api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["lease"] is None
    driver.save_screenshot(str(ARTIFACTS / "label_viewer.png"))
    driver.find_element(by.ID, "logout").click()
    wait_until(lambda: driver.find_element(by.ID, "login-form").is_displayed(), 5, "signed out")

    # alice's frame: the page renews her lease when the tab comes back (and every 2 minutes)
    sign_in(driver, f"{api.root}/label", "alice")
    wait_until(lambda: body(driver, "frame") == ids[0], 15, "alice's frame")
    before = api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["lease"]["until_ms"]
    js(driver, "document.dispatchEvent(new Event('visibilitychange'))")
    wait_until(lambda: body(driver, "renewals") == "1", 10, "the lease renewed")
    assert api.get(f"/datasets/{DATASET}/frames/{ids[0]}")["lease"]["until_ms"] > before
    # her lease lapses (until 1 ms after the epoch) and bob takes the frame: the next renewal says she lost it
    api.server.config.app.state.store.lease_next(DATASET, "alice", None, 0, 1)
    bob = login(api, "bob")
    try:
        assert bob.post(f"/datasets/{DATASET}/frames/{ids[0]}/lease").json()["lease"]["user"] == "bob"
    finally:
        bob.close()
    js(driver, "document.dispatchEvent(new Event('visibilitychange'))")
    wait_until(lambda: body(driver, "lease") == "lost", 10, "the lost lease")
    assert js(driver, message).startswith(f"Your lease on frame {ids[0]} was lost (frame {ids[0]} is leased to bob)")
    assert js(driver, "return document.getElementById('lease').textContent") == "lease lost"
    driver.save_screenshot(str(ARTIFACTS / "label_lease_lost.png"))


def test_qa_reject_marked_wrong_becomes_a_frame_to_label(tmp_path: Path, driver) -> None:  # noqa: F811
    _, _, by = _require_browser()
    now = time.time_ns() // 1_000_000
    box = (0.3, 0.25, 0.6, 0.7)
    with ApiServer(settings_for(tmp_path)) as api:
        store: SqliteStore = api.server.config.app.state.store
        create_user(store, "qa-op", PASSWORD, "operator")
        reject = inspection("line-1", now - 60_000, "reject", seq=1, defects=[("scratches", 0.62, box)], snapshot="snap-1")
        store.write_events([reject], now)
        store.write_snapshot("site-a", "cam-box-1", "snap-1", steel_jpeg(1, box), now)

        sign_in(driver, f"{api.root}/qa#line=line-1&window=1h", "qa-op")
        wait_until(lambda: js(driver, "return document.querySelectorAll('#gallery .reject-card').length") == 1, 15,
                   "the reject in the gallery")
        driver.find_element(by.CSS_SELECTOR, "#gallery .reject-card").click()
        wait_until(lambda: driver.find_element(by.ID, "mark-wrong").is_displayed(), 5, "the lightbox")
        driver.find_element(by.ID, "mark-wrong").click()
        wait_until(lambda: body(driver, "markedWrong") == reject.id, 10, "the reject marked wrong")
        result = driver.find_element(by.ID, "mark-wrong-result").text
        assert result == f"Sent to dataset neu-det for labelling (frame {reject.id}-wrong).", result
        assert not driver.find_element(by.ID, "lightbox").get_attribute("hidden")  # the click kept it open
        driver.save_screenshot(str(ARTIFACTS / "qa_mark_wrong.png"))

        frame = api.get(f"/datasets/neu-det/frames/{reject.id}-wrong")
        assert frame["reason"] == "on_demand" and frame["status"] == "new"
        assert frame["predictions"] == [{"label": "scratches", "score": 0.62, "box": list(box)}]
        # the same session opens it on the labelling page, the defect box pre-filled
        driver.get(f"{api.root}/label#dataset=neu-det&frame={reject.id}-wrong")
        wait_until(lambda: body(driver, "frame") == f"{reject.id}-wrong" and body(driver, "boxes") == "1", 15,
                   "the marked reject on /label")
        assert_boxes(page_boxes(driver), [("scratches", list(box))])
        driver.save_screenshot(str(ARTIFACTS / "label_from_qa.png"))
