"""The fleet pages in a real headless Chromium, against real Mosquitto, the API as a process and 3 real agents
(1 OS process, 2 in-process): sign in, the fleet table fills, upload a garbage-output model through the page,
upload a config version typed as YAML and see a refused one's message, start a rollout, watch the canary fail
its gate and roll back, see the audit entries.

Uses the shared browser fixture of the QA dashboard test. Screenshots: test-artifacts/fleet_*.png.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cloud_api.test_qa_dashboard_browser import ARTIFACTS, _require_browser, driver  # noqa: F401
from tests.support.api_process import ApiProcess
from tests.support.bad_models import garbage_model
from tests.support.fleet_rig import BASE_MODEL, Api, FleetRig
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
PASSWORD = "fleet-owner-pw"
BASE_SHA = hashlib.sha256(BASE_MODEL.read_bytes()).hexdigest()


@pytest.fixture()
def fleet(tmp_path: Path) -> Iterator[tuple[ApiProcess, FleetRig, Api]]:
    (tmp_path / "api").mkdir()
    (tmp_path / "edge").mkdir()
    with MosquittoBroker() as broker:
        api = ApiProcess(tmp_path / "api", broker, client_id="fleet-browser-api",
                         bootstrap_admin={"username": "owner", "password": PASSWORD})
        api.start()
        rig = FleetRig(tmp_path / "edge", broker.port, processes=1, in_process=2, fps=2)
        try:
            rig.start()
            client = Api(api.url, api.token)
            client.wait_fleet(rig.devices)
            yield api, rig, client
        finally:
            rig.stop()
            api.stop()


def js(browser: Any, script: str) -> Any:
    return browser.execute_script(script)


def test_sign_in_see_the_fleet_start_a_rollout_and_watch_the_canary_roll_back(fleet, driver, tmp_path) -> None:  # noqa: F811
    api, rig, client = fleet
    _, _, by = _require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    driver.get(f"{api.url}/fleet?settle_s=3&stats_grace_s=10#fleet")
    wait_until(lambda: driver.find_element(by.ID, "login-form").is_displayed(), 15, what="the login form")
    driver.find_element(by.ID, "login-user").send_keys("owner")
    driver.find_element(by.ID, "login-pass").send_keys(PASSWORD)
    driver.find_element(by.ID, "login-submit").click()

    # the table fills with the 3 agents, online, on their model, with fps from their stats
    rows = "#fleet-table tbody tr"
    wait_until(lambda: js(driver, f"return document.querySelectorAll('{rows} .dot.on').length") == 3, 20,
               what="3 online devices in the table")
    table = js(driver, f"return [...document.querySelectorAll('{rows}')].map(r => [...r.cells].map(c => c.textContent.trim()))")
    assert [r[:2] for r in table] == [["farm", "dev-01"], ["farm", "dev-02"], ["farm", "dev-03"]]
    assert {r[3] for r in table} == {"tomato-ripeness"} and all(float(r[5]) > 0 for r in table), table
    driver.find_element(by.ID, "fleet-filter").send_keys("dev-02")
    assert js(driver, f"return document.querySelectorAll('{rows}').length") == 1
    driver.find_element(by.ID, "fleet-filter").clear()
    driver.find_element(by.CSS_SELECTOR, "th[data-sort='device']").click()
    driver.find_element(by.CSS_SELECTOR, "th[data-sort='device']").click()  # descending
    wait_until(lambda: js(driver, f"return document.querySelector('{rows}').dataset.key") == "farm/dev-03", 5,
               what="sorted by device, descending")
    wait_until(lambda: js(driver, "return document.getElementById('live-status').textContent").endswith("live"), 10,
               what="the WebSocket connected")
    driver.save_screenshot(str(ARTIFACTS / "fleet_table.png"))

    # upload the garbage model through the models page
    driver.get(f"{api.url}/fleet?settle_s=3&stats_grace_s=10#models")
    bad = garbage_model(BASE_MODEL, tmp_path / "garbage.onnx")
    wait_until(lambda: driver.find_element(by.ID, "upload-file").is_displayed(), 10, what="the upload form")
    driver.find_element(by.ID, "upload-file").send_keys(str(bad))
    driver.find_element(by.CSS_SELECTOR, "#upload-form button[type='submit']").click()
    wait_until(lambda: "registered tomato-ripeness 9.0.0-garbage" in driver.find_element(by.ID, "upload-result").text,
               20, what="the upload result")
    bad_sha = hashlib.sha256(bad.read_bytes()).hexdigest()

    # a config version typed as YAML into the form is registered; one the agent would refuse shows the server's words
    from selenium.webdriver.common.action_chains import ActionChains

    def type_into(field: str, text: str) -> None:
        element = driver.find_element(by.ID, field)
        element.clear()  # clear() leaves the focus, so the click comes after it
        ActionChains(driver).click(element).send_keys(text).perform()  # a real mouse click, then real keys

    type_into("config-name", "shed-cams")
    type_into("config-note", "slower stats")
    type_into("config-text", "stats_interval_s: 30\nmodel:\n  conf_threshold: 0.4\n")
    ActionChains(driver).click(driver.find_element(by.ID, "config-submit")).perform()
    wait_until(lambda: driver.find_element(by.ID, "config-result").text.startswith("registered config shed-cams v1 ("),
               10, what="the config registered")
    stored = client.ok("GET", "/configs")
    assert [(c["name"], c["version"], c["note"], c["config"]) for c in stored] == [
        ("shed-cams", "1", "slower stats", {"stats_interval_s": 30, "model": {"conf_threshold": 0.4}})]
    wait_until(lambda: js(driver, "return document.querySelectorAll('#configs-table tbody tr').length") == 1, 10,
               what="the config in the table")
    type_into("config-name", "broker-move")
    type_into("config-text", "mqtt:\n  port: 1884\n")
    ActionChains(driver).click(driver.find_element(by.ID, "config-submit")).perform()
    result = driver.find_element(by.ID, "config-result")
    wait_until(lambda: "refused" in result.get_attribute("class"), 10, what="the refused config")
    assert result.text.startswith("config refused: ") and "mqtt: cannot be set by a config version" in result.text
    assert len(client.ok("GET", "/configs")) == 1
    driver.save_screenshot(str(ARTIFACTS / "fleet_config_refused.png"))

    # start a rollout of it to the site: canary first
    driver.find_element(by.CSS_SELECTOR, "nav [data-page='deployments']").click()
    wait_until(lambda: js(driver, f"return !!document.querySelector('#deploy-model option[value=\"{bad_sha}\"]')"), 10,
               what="the model in the rollout form")
    js(driver, f"document.getElementById('deploy-model').value = '{bad_sha}'")
    driver.find_element(by.ID, "deploy-target").send_keys("farm")
    for field, value in (("deploy-hold", "4"), ("deploy-batch", "2")):
        driver.find_element(by.ID, field).clear()
        driver.find_element(by.ID, field).send_keys(value)
    driver.find_element(by.ID, "deploy-start").click()
    wait_until(lambda: "#deployment/" in driver.current_url, 10, what="the new rollout's page")
    wait_until(lambda: js(driver, "return document.querySelectorAll('#deployment-stages .stage').length") == 2, 10,
               what="canary and one batch drawn")
    driver.save_screenshot(str(ARTIFACTS / "fleet_rollout_started.png"))

    # the canary fails its gate (counts jump) and rolls back; the batch never starts
    canary = "#deployment-stages .stage[data-stage='0'] .device-row .state"
    wait_until(lambda: js(driver, f'return document.querySelector("{canary}").textContent') == "rolled_back", 60,
               what="the canary rolled back")
    wait_until(lambda: js(driver, "return document.querySelector('#deployment-title .state').textContent") == "failed",
               20, what="the rollout failed")
    reason = driver.find_element(by.ID, "deployment-reason").text
    assert reason.startswith("canary farm/dev-01 failed its gate: counts jumped"), reason
    batch = js(driver, "return [...document.querySelectorAll(\"#deployment-stages .stage[data-stage='1'] .state\")]"
                       ".map(s => s.textContent)")
    assert batch == ["skipped", "skipped"]
    wait_until(lambda: {"deployment.create", "deployment.gate_failed", "deployment.device_rollback",
                        "deployment.failed"} <= set(js(driver, "return [...document.querySelectorAll("
                                                               "'#deployment-audit tr')].map(r => r.dataset.action)")),
               15, what="the audit entries on the page")
    assert int(js(driver, "return document.body.dataset.liveMessages || 0")) > 0  # it was updated live
    driver.save_screenshot(str(ARTIFACTS / "fleet_rollout_rolled_back.png"))

    # and the fleet itself: every device on its old model
    assert {k: d["sha256"] for k, d in client.fleet().items()} == {k: BASE_SHA for k in rig.devices}
    driver.get(f"{api.url}/fleet#device/farm/dev-01")
    wait_until(lambda: "farm / dev-01" in driver.find_element(by.ID, "device-title").text, 10, what="device page")
    driver.find_element(by.CSS_SELECTOR, "[data-command='snapshot']").click()
    wait_until(lambda: "snapshot: ok" in driver.find_element(by.ID, "command-result").text, 30, what="snapshot reply")
    wait_until(lambda: js(driver, "return document.getElementById('device-snapshot').naturalWidth") == 320, 15,
               what="the snapshot image")
    driver.save_screenshot(str(ARTIFACTS / "fleet_device.png"))
