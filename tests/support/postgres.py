"""Start a real PostgreSQL (Debian's binaries) in a temp folder on a free port for tests.

    with PostgresServer() as server:
        dsn = server.create_database("t1")   # a fresh, empty database
        server.restart()                     # stop (fast shutdown) and start again on the same port

PostgreSQL refuses to run as root: as root the cluster is owned by, and the server runs as, ``nobody``
(``setpriv``); otherwise as the current user. Raises :class:`PostgresNotInstalled` when ``initdb`` is
missing (``scripts/test.sh`` installs the ``postgresql`` package; tests never skip).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.mosquitto import free_port, terminate

USER = "fieldline"  # the cluster's superuser (trust auth on 127.0.0.1 and the socket in the temp folder)
# server settings of the throwaway cluster (benches record them): no fsync, a test machine's memory
SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "200", "shared_buffers": "32MB"}


class PostgresNotInstalled(RuntimeError):
    pass


class PostgresStartError(RuntimeError):
    pass


def find_bindir() -> Path:
    """The folder of ``initdb`` and ``postgres``: Debian keeps them in /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise PostgresNotInstalled("initdb not found in /usr/lib/postgresql/*/bin or on PATH; install it with "
                                   "`apt-get install -y postgresql`")
    return Path(on_path).resolve().parent


def _as_owner() -> list[str]:
    """Command prefix that drops root to ``nobody`` (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


def proc_tree_cpu_s(root_pid: int) -> float:
    """User + system CPU seconds of ``root_pid`` and its direct children (live ones from /proc, exited ones
    through the root's ``cutime``/``cstime``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid:
            total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
        elif ppid == root_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class PostgresServer:
    """One PostgreSQL cluster in a temp folder; ``create_database`` hands out fresh databases on it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.bindir = find_bindir()
        self._tmp = Path(tempfile.mkdtemp(prefix="fieldline-pg-"))
        self.data_dir = self._tmp / "data"
        self.socket_dir = self._tmp / "sock"
        self.log_path = self._tmp / "postgres.log"
        self._process: subprocess.Popen | None = None
        self._log = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> PostgresServer:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self._tmp, "nobody", "nogroup")
            shutil.chown(self.socket_dir, "nobody", "nogroup")
        result = subprocess.run(
            [*_as_owner(), str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", USER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=120, cwd=self._tmp,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (again) on the same port and wait until it accepts connections."""
        if self._process is not None and self._process.poll() is None:
            return
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open while the server runs
        self._process = subprocess.Popen(
            [*_as_owner(), str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
             "-k", str(self.socket_dir), "-c", f"listen_addresses={self.host}",
             *(arg for name, value in SETTINGS.items() for arg in ("-c", f"{name}={value}"))],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self._tmp,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PostgresStartError(f"postgres exited with {self._process.returncode}: {self.log_tail()}")
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
                                   capture_output=True, timeout=10)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise PostgresStartError(f"postgres not ready on port {self.port} after {timeout} s: {self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: open sessions are ended, committed data stays)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(2)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                terminate(self._process, 5)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server so far: the postmaster, its live processes (backends, writer,
        checkpointer, ...) and the ones that exited (counted in the postmaster's children times)."""
        root = self.pid
        if root is None:
            raise PostgresStartError("the server is not running")
        return proc_tree_cpu_s(root)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # ------------------------------------------------------------ databases

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database (name: letters, digits, underscores) and return its DSN."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: only letters, digits and underscores")
        result = subprocess.run(
            [str(self.bindir / "psql"), "-q", "-h", self.host, "-p", str(self.port), "-U", USER, "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"'],
            capture_output=True, text=True, timeout=60,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"CREATE DATABASE {name} failed: {result.stderr.strip()}")
        return self.dsn(name)


RESET_SQL = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT i.inhrelid::regclass AS part FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
           WHERE p.relname IN ('events', 'count_points') LOOP
    EXECUTE 'DROP TABLE ' || r.part;
  END LOOP;
  SET LOCAL session_replication_role = replica;  -- no foreign-key checks while emptying
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'fieldline_schema'
           AND tablename NOT IN ('events', 'count_points') LOOP
    EXECUTE format('DELETE FROM %I', r.tablename);
  END LOOP;
  FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
    EXECUTE format('SELECT setval(%L, 1, false)', r.sequencename);
  END LOOP;
END $$;
"""


def reset_database(dsn: str) -> None:
    """Empty every FieldLine table of the database at ``dsn`` (schema kept): a fresh store, much faster than a
    new database (which would migrate again)."""
    import psycopg  # the dev extra has it

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(RESET_SQL)  # type: ignore[arg-type]
