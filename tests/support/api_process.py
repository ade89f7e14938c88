"""The cloud API as a real OS process (``python -m fieldline.cli api serve``), for crash and restart tests.

    api = ApiProcess(tmp_path, broker, client_id="api-1")
    api.start()                # returns once /health says MQTT is connected and subscribed
    api.kill()                 # SIGKILL: no shutdown code runs
    api.start()                # same config, same database, same MQTT client id (persistent session)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.mosquitto import MosquittoBroker, free_port, terminate

REPO = Path(__file__).resolve().parents[2]


class ApiProcess:
    def __init__(self, workdir: Path, broker: MosquittoBroker, *, token: str = "reliability-token",
                 client_id: str = "fieldline-api-rel", **settings: Any) -> None:
        self.workdir = workdir
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "api.yaml"
        self.log_path = workdir / "api.log"
        self.data_dir = workdir / "data"
        config = {
            "data_dir": str(self.data_dir), "mqtt_host": broker.host, "mqtt_port": broker.port,
            "mqtt_client_id": client_id, "mqtt_persistent_session": True, "api_tokens": [token],
            "mqtt_reconnect_min_s": 0.2, "mqtt_reconnect_max_s": 1.0, **settings,
        }
        self.config_path.write_text(yaml.safe_dump(config))
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def database(self) -> Path:
        return self.data_dir / "fieldline.db"

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> ApiProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE__")}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts + 1} =====\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "fieldline.cli", "api", "serve", "--config", str(self.config_path),
                 "--port", str(self.port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"API exited with {self._process.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.health()["mqtt"]["connected"]:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"API not ready (MQTT connected) within {timeout} s:\n{self.log()[-3000:]}")

    def health(self) -> dict[str, Any]:
        """The full health (MQTT state, ingest counters): needs a token, unlike the bare liveness answer."""
        return self.get("/health")

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1{path}", params=params, timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})
        return response.raise_for_status().json()

    def kill(self) -> None:
        """SIGKILL, like a power cut of the process: no lifespan shutdown, no acks, no flush."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
