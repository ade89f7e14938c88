"""Start a real Mosquitto broker on a free local port for tests.

    with MosquittoBroker() as broker:
        client.connect(broker.host, broker.port)
        broker.stop()   # simulate an outage ...
        broker.start()  # ... and bring it back on the same port

Raises :class:`MosquittoNotInstalled` when the binary is missing (CI installs it; tests never skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

DEFAULT_BINARY = "/usr/sbin/mosquitto"



def terminate(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM and wait; SIGKILL if it does not exit in ``timeout`` s (nothing to do if already gone)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)

class MosquittoNotInstalled(RuntimeError):
    pass


class MosquittoStartError(RuntimeError):
    pass


def find_mosquitto() -> str:
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    found = shutil.which("mosquitto")
    if found is None:
        raise MosquittoNotInstalled(
            f"mosquitto not found at {DEFAULT_BINARY} or on PATH; install it with `apt-get install -y mosquitto`"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """A Mosquitto process with a temp config: anonymous, no persistence, bound to 127.0.0.1."""

    def __init__(self, port: int | None = None, start_timeout: float = 10.0, extra_config: str = "",
                 persistent: bool = False) -> None:
        self.binary = find_mosquitto()
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._start_timeout = start_timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="fieldline-mosquitto-"))
        self._workdir.chmod(0o777)  # run as root, mosquitto drops to its own user and must write persistence here
        self.config_path = self._workdir / "mosquitto.conf"
        self.log_path = self._workdir / "mosquitto.log"
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            + (f"persistence true\npersistence_location {self._workdir}/\nautosave_interval 1\n"
               "autosave_on_changes true\n" if persistent else "persistence false\n")
            + "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{extra_config}"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> MosquittoBroker:
        if self.running:
            return self
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MosquittoStartError(
                    f"mosquitto exited with {self._process.returncode} on port {self.port}:\n{self.log()}"
                )
            if port_accepts(self.host, self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise MosquittoStartError(f"mosquitto did not accept on port {self.port} within {self._start_timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)

    def kill(self) -> None:
        """``kill -9``: no clean shutdown, no last save (a power cut or an OOM kill)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
