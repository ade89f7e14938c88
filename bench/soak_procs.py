"""The soak's own processes: edge agents as real ``fieldline edge run`` processes, each behind a TCP proxy,
with a data folder on a size-capped tmpfs (a disk that can fill) and a wall clock the bench can step.

``AgentProcess.restart_if_exited`` plays systemd's ``Restart=always`` (deploy/systemd): an agent that exits
on its own is started again and counted in ``unplanned_exits``.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from bench.soak_proxy import TcpProxy
from edge_agent.config import AgentConfig

REPO = Path(__file__).resolve().parents[1]
CLOCK_SHIM = Path(__file__).resolve().parent / "soak_clock"


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB (``VmRSS``), or None when it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class DataDisk:
    """A small tmpfs mounted on ``path`` (root only), filled on demand by a ballast file and freed again.

    Without the right to mount, ``fill`` falls back to a file-size limit on the agent process
    (``RLIMIT_FSIZE`` by ``prlimit``): writes past the limit then fail with EFBIG instead of ENOSPC.
    """

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        self.size_mb = size_mb
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                                capture_output=True, text=True)
        self.mounted = result.returncode == 0
        self.how = "tmpfs" if self.mounted else f"RLIMIT_FSIZE (mount failed: {result.stderr.strip()[:80]})"
        self._ballast = path / "ballast.bin"

    def fill(self, pid: int | None) -> None:
        if not self.mounted:
            if pid is not None:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
            return
        with self._ballast.open("wb") as handle:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    handle.write(chunk)
                    handle.flush()
            except OSError:  # ENOSPC: the disk is full
                pass

    def free(self, pid: int | None) -> None:
        if not self.mounted:
            if pid is not None:
                try:
                    resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                except ProcessLookupError:
                    pass
            return
        self._ballast.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


class AgentProcess:
    """One edge agent process: its config (pointed at its proxy), its disk, its clock file and log."""

    def __init__(self, config: AgentConfig, workdir: Path, broker_port: int, disk_mb: int) -> None:
        self.device = config.device
        self.site = config.site
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.proxy = TcpProxy("127.0.0.1", broker_port).start()
        self.disk = DataDisk(workdir / "data", disk_mb)
        self.clock_file = workdir / "clock_offset_s"
        self.clock_file.write_text("0\n")
        self.config_path = workdir / "agent.yaml"
        self.log_path = workdir / "agent.log"
        mqtt = config.mqtt.model_copy(update={"port": self.proxy.port, "reconnect_min_s": 1.0,
                                              "reconnect_max_s": 10.0, "keepalive_s": 15})
        self.config = config.model_copy(update={"mqtt": mqtt, "data_dir": self.disk.path})
        self.config_path.write_text(yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False))
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.unplanned_exits = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive and self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE__")}
        env["PYTHONPATH"] = os.pathsep.join([str(CLOCK_SHIM), str(REPO), env.get("PYTHONPATH", "")])
        env["FIELDLINE_SOAK_CLOCK_FILE"] = str(self.clock_file)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts + 1} =====\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "fieldline.cli", "edge", "run", "--config", str(self.config_path)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        """``kill -9``: a power cut of the agent."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)

    def restart_if_exited(self) -> bool:
        """systemd's Restart=always: True when the agent had exited by itself and was started again."""
        if self._process is not None and self._process.poll() is not None:
            self.unplanned_exits += 1
            self.start()
            return True
        return False

    def stop(self, timeout: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def set_clock_offset(self, seconds: float) -> None:
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{seconds}\n")
        os.replace(tmp, self.clock_file)

    def spool_figures(self) -> dict[str, int]:
        """Read the agent's spool (after it stopped): last seq, events still waiting, dropped by the cap."""
        path = self.disk.path / "spool.db"
        if not path.exists():
            return {"last_seq": 0, "pending_events": 0, "pending": 0, "dropped": 0}
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            state = dict(db.execute("SELECT key, value FROM state").fetchall())
            pending = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            pending_events = db.execute("SELECT COUNT(*) FROM outbox WHERE topic LIKE '%/events'").fetchone()[0]
        return {"last_seq": int(state.get("seq", 0)), "pending_events": int(pending_events),
                "pending": int(pending), "dropped": int(state.get("dropped", 0))}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        self.proxy.close()
        self.disk.close()
