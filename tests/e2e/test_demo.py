"""`fieldline demo --duration 30` as a real subprocess: embedded broker, API and simulated sheds."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.support.live_api import free_port, wait_until

pytestmark = pytest.mark.e2e


def test_demo_runs_fills_sheds_and_exits_cleanly(tmp_path):
    api_port, mqtt_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldline.cli", "demo", "--data-dir", str(tmp_path), "--api-port", str(api_port),
         "--mqtt-port", str(mqtt_port), "--sheds", "8", "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        info = wait_until(lambda: (tmp_path / "demo.json").exists() and json.loads((tmp_path / "demo.json").read_text()),
                          timeout=30, what="demo.json")
        assert set(info) >= {"api_url", "token", "mqtt_host", "mqtt_port"}
        assert info["mqtt_port"] == mqtt_port
        headers = {"Authorization": f"Bearer {info['token']}"}
        assert httpx.get(f"{info['api_url']}/api/v1/health").status_code == 200
        def counted_sheds() -> list[dict]:
            sheds = httpx.get(f"{info['api_url']}/api/v1/sheds", headers=headers).json()
            return [s for s in sheds if sum(s["counts"].values()) > 0]

        wait_until(lambda: len(counted_sheds()) == 8, timeout=25, what="all 8 sheds counted")
        assert {s["id"] for s in counted_sheds()} == {f"shed-{n:02d}" for n in range(1, 9)}
        assert httpx.get(f"{info['api_url']}/api/v1/sheds").status_code == 401
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert info["token"] in output
    assert info["api_url"] in output
