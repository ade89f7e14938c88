"""The training page ``/training`` in a real headless Chromium against the real API (uvicorn, SQLite, the training
runner with real worker processes), with real clicks: sign in with the shared sign-in form; the dataset's counts
and the model in service preselected; a short job from the shipped model watched over the WebSocket and refused
(old vs new mAP50 on the test split and the original holdout, and why); a queued job cancelled; the farm then
runs that fine-tuned file (registered by hand, so the page now preselects it), a second short job from it is
registered, its card shown, and "Roll out…" opens /fleet with it chosen, where the rollout is started and listed.

Two real jobs of a few steps on the training-job test's tiny dataset (9 frames of the shifted greenhouse): the
slowest test of the module (about two minutes on a shared 2-core machine). Screenshots: test-artifacts/training_*.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_api.fleet.registry import ModelRegistry
from cloud_api.services.users import create_user
from fieldline.contract import DeviceStatus, ModelRef
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, settings_for, wait_until
from tests.cloud_api.test_label_page_browser import body, js, sign_in
from tests.cloud_api.test_qa_dashboard_browser import ARTIFACTS, _require_browser, driver  # noqa: F401
from tests.cloud_api.test_training_jobs import LABELS, push_truth

pytestmark = pytest.mark.slow  # two real training jobs

# job 1: a few steps from the shipped file, refused (a fresh export of few steps is not better on the test split)
FIRST = {"job-steps": "2", "job-input": "384", "job-lr": "0.0001", "job-replay": "4", "job-holdout": "4",
         "job-threads": "1"}
# job 2: from job 1's file, ten steps at the model's own input size: better on both, registered
SECOND = {**FIRST, "job-steps": "10", "job-lr": "0.001", "job-replay": "8"}


@pytest.fixture
def training_api(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path)) as api:
        store = api.server.config.app.state.store
        create_user(store, "ann", PASSWORD, "operator")
        assert api.client.post("/datasets", json={"name": "shift", "labels": list(LABELS)}).status_code == 201
        push_truth(api.client, "shift")
        zoo = next(b for b in api.get("/training/base-models") if b["base_model"] == "tomato-ripeness")
        run_on_camera(store, zoo["name"], zoo["version"], zoo["sha256"])
        yield api


def run_on_camera(store: Any, name: str, version: str, sha256: str) -> None:
    """The farm's camera reports it runs this model (offline now: a rollout waits for it)."""
    now = time.time_ns() // 1_000_000
    store.write_status(DeviceStatus(state="offline", device="cam-01", site="farm", ts_ms=now,
                                    model=ModelRef(name=name, version=version, sha256=sha256)), now)


def text(browser: Any, element_id: str) -> str:
    return str(js(browser, f"return document.getElementById('{element_id}').textContent"))


def fill(browser: Any, settings: dict[str, str]) -> None:
    _, _, by = _require_browser()
    if not js(browser, "return document.getElementById('job-more').open"):
        browser.find_element(by.CSS_SELECTOR, "#job-more summary").click()
    for field, value in settings.items():
        box = browser.find_element(by.ID, field)
        box.clear()
        box.send_keys(value)
    if js(browser, "return document.getElementById('job-quantize').checked"):
        browser.find_element(by.ID, "job-quantize").click()  # FP32 only: keeps the runs short


def start(browser: Any, api: ApiServer, before: str) -> str:
    _, _, by = _require_browser()
    browser.find_element(by.ID, "job-start").click()
    wait_until(lambda: body(browser, "job").startswith("tj-") and body(browser, "job") != before, 10,
               what="the new job selected")
    return body(browser, "job")


def finished(browser: Any, api: ApiServer, job_id: str) -> dict[str, Any]:
    """Wait for the page to show the job finished (from the WebSocket); the API's job, checked against the page."""
    wait_until(lambda: body(browser, "job") == job_id and body(browser, "jobState") in ("done", "rejected", "failed"),
               300, what=f"job {job_id} to finish on the page")
    job = api.get(f"/training/jobs/{job_id}")
    result = job["result"]
    for key in ("test", "holdout"):
        for who in ("old", "new"):
            shown = js(browser, f"return document.querySelector('[data-{who}={key}]').textContent")
            assert shown == f"{result[who][key]:.3f}", (who, key)
    return job


def test_train_watch_and_roll_out_from_the_browser(training_api, driver) -> None:  # noqa: F811
    api = training_api
    _, _, by = _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(driver, f"{api.root}/training", "ann")
    wait_until(lambda: body(driver, "ready") == "yes", 15, what="the training page")
    assert text(driver, "user-name") == "ann (operator)"
    # the dataset with its counts; the model in service preselected
    assert js(driver, "return document.getElementById('job-dataset').value") == "shift"
    assert js(driver, "return document.querySelector('[data-stat=status-labelled]').textContent") == "9"
    assert js(driver, "return document.querySelector('[data-stat=split-test]').textContent") == "2"
    assert js(driver, "return document.getElementById('job-base').value") == "tomato-ripeness"
    assert text(driver, "base-note") == "In service on 1 device."
    wait_until(lambda: "live" in text(driver, "live-status"), 10, what="the WebSocket")

    # job 1, settings typed into the form; progress arrives over the WebSocket (the page polls only every 15 s)
    fill(driver, FIRST)
    driver.save_screenshot(str(ARTIFACTS / "training_form.png"))
    first = start(driver, api, "")
    assert driver.current_url.endswith(f"#job={first}")
    job = api.get(f"/training/jobs/{first}")
    assert (job["params"]["steps"], job["params"]["lr"], job["params"]["quantize"]) == (2, 0.0001, False)
    # a second job queues behind it: cancelled from the page before it starts
    queued = start(driver, api, first)
    assert body(driver, "jobState") == "queued"
    driver.find_element(by.ID, "job-cancel").click()
    wait_until(lambda: body(driver, "jobState") == "cancelled", 10, what="the queued job cancelled")
    assert api.get(f"/training/jobs/{queued}")["state"] == "cancelled"
    assert "cancelled before it started" in text(driver, "job-reason")
    driver.find_element(by.CSS_SELECTOR, f"#jobs-table tr[data-id='{first}']").click()
    wait_until(lambda: int(body(driver, "jobStep") or 0) > 0 and body(driver, "jobState") == "running", 120,
               what="training progress on the page")
    assert int(body(driver, "liveMessages")) >= 3
    driver.save_screenshot(str(ARTIFACTS / "training_progress.png"))
    refused = finished(driver, api, first)
    assert refused["state"] == "rejected", (refused["error"], refused["result"].get("reason"))
    assert text(driver, "job-state") == "refused"
    assert text(driver, "job-reason") == f"Not registered: {refused['result']['reason']}"
    assert not driver.find_element(by.ID, "job-rollout").is_displayed()
    driver.save_screenshot(str(ARTIFACTS / "training_refused.png"))

    # the farm runs job 1's file now (pushed by hand): the page preselects it as the model in service
    new_file = next((api.server.config.app.state.settings.data_dir / "training" / first).glob("*.onnx"))
    store = api.server.config.app.state.store
    record, _ = ModelRegistry(store, api.server.config.app.state.settings.data_dir).add(
        new_file.read_bytes(), actor="ann", role="operator", now_ms=time.time_ns() // 1_000_000)
    run_on_camera(store, record.name, record.version, record.sha256)
    driver.refresh()
    wait_until(lambda: body(driver, "ready") == "yes" and js(driver, "return document.getElementById('job-base').value")
               == record.sha256, 15, what="the fine-tuned file preselected")

    # job 2 from it: registered, with its card
    fill(driver, SECOND)
    second = start(driver, api, first)
    done = finished(driver, api, second)
    assert done["state"] == "done", (done["error"], done["result"].get("reason"))
    assert done["base_model"] == record.sha256
    result = done["result"]
    assert text(driver, "job-state") == "registered"
    assert text(driver, "job-reason").startswith(f"Registered {result['version']}: test-split mAP50")
    sha = result["registered_sha256"]
    assert body(driver, "registered") == sha
    wait_until(lambda: "Dataset `shift`: 9 labelled frames" in text(driver, "job-card"), 10, what="the model card")
    driver.save_screenshot(str(ARTIFACTS / "training_result.png"))

    # Roll out…: /fleet opens with the registered file chosen; start the rollout there and see it listed
    rollout = driver.find_element(by.ID, "job-rollout")
    assert rollout.get_attribute("href").endswith(f"/fleet#deploy/{sha}")
    rollout.click()
    wait_until(lambda: js(driver, "return document.getElementById('deploy-model').value") == sha, 15,
               what="the fleet rollout form with the new model")
    assert "chosen: set the target" in text(driver, "deploy-result")
    driver.find_element(by.ID, "deploy-target").send_keys("farm")
    driver.find_element(by.ID, "deploy-start").click()
    wait_until(lambda: js(driver, "return document.querySelectorAll('#deployments-table tbody tr').length") == 1, 15,
               what="the rollout in the table")
    deployment = api.get("/deployments")[0]
    assert (deployment["sha256"], deployment["target"], deployment["created_by"]) == (sha, {"site": "farm"}, "ann")
    driver.save_screenshot(str(ARTIFACTS / "training_rollout_fleet.png"))
