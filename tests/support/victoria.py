"""Start a real VictoriaMetrics on a free local port: the test server for the InfluxDB write path.

VictoriaMetrics accepts InfluxDB line protocol at ``/api/v2/write`` (what influxdb-client sends) and
serves the stored samples back at ``/api/v1/export``. A measurement ``m`` with field ``f`` becomes the
metric ``m_f``; tags become labels.

    with VictoriaMetrics() as vm:
        ...write to vm.url with influxdb-client...
        vm.export('{__name__="counts_n"}')  # -> list of {"metric": {...}, "values": [...], "timestamps": [...]}
        vm.stop()   # simulate an outage ...
        vm.start()  # ... and bring it back on the same port with the same data

Raises :class:`VictoriaMetricsNotInstalled` when the binary is missing (CI installs it; tests never skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.support.mosquitto import free_port, port_accepts

DEFAULT_BINARY = "/usr/bin/victoria-metrics"


class VictoriaMetricsNotInstalled(RuntimeError):
    pass


class VictoriaMetricsStartError(RuntimeError):
    pass


def find_victoria_metrics() -> str:
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    found = shutil.which("victoria-metrics")
    if found is None:
        raise VictoriaMetricsNotInstalled(
            f"victoria-metrics not found at {DEFAULT_BINARY} or on PATH; "
            "install it with `apt-get install -y victoria-metrics`"
        )
    return found


class VictoriaMetrics:
    """A single-node VictoriaMetrics process with its data in a temp dir, bound to 127.0.0.1."""

    def __init__(self, port: int | None = None, start_timeout: float = 15.0) -> None:
        self.binary = find_victoria_metrics()
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        self._start_timeout = start_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="fieldline-victoria-"))
        self.log_path = self._workdir / "victoria-metrics.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> VictoriaMetrics:
        if self.running:
            return self
        args = [
            self.binary,
            f"-storageDataPath={self._workdir / 'data'}",
            f"-httpListenAddr={self.host}:{self.port}",
            "-search.latencyOffset=1s",  # samples are visible to export/query one second after they arrive
            "-retentionPeriod=100y",  # tests may write old timestamps; the default (1 month) would drop them
            "-loggerLevel=WARN",
        ]
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise VictoriaMetricsStartError(
                    f"victoria-metrics exited with {self._process.returncode} on port {self.port}:\n{self.log()}"
                )
            if port_accepts(self.host, self.port) and self._healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise VictoriaMetricsStartError(f"victoria-metrics did not answer on port {self.port} within {self._start_timeout} s")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: VictoriaMetrics flushes its in-memory parts to disk
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def export(self, match: str, start_s: float | None = None) -> list[dict[str, Any]]:
        """Every series matching the selector, as parsed JSON lines of ``/api/v1/export``."""
        # make the rows still in memory searchable now, instead of after VictoriaMetrics' periodic flush
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()
        params: dict[str, Any] = {"match[]": match}
        if start_s is not None:
            params["start"] = start_s
        response = httpx.get(f"{self.url}/api/v1/export", params=params, timeout=10)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
