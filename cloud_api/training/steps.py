"""The commands a training job runs in worker processes (``fieldline model train|export|eval|quantize``) and
the parsing of their output. Each step is one child process in its own process group, so cancelling a job
kills the whole step."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROGRESS_LINE = re.compile(r"\bep (\d+) step (\d+) loss ([0-9.]+) val mAP50 (\S+)")
CLI = [sys.executable, "-m", "cloud_api.training.train_proc"]


class StepFailed(RuntimeError):
    """A worker process exited non-zero; the message carries the last lines it printed."""


class Cancelled(RuntimeError):
    """The job was cancelled while a step ran."""


@dataclass(frozen=True)
class Progress:
    epoch: int
    step: int
    loss: float
    val_map50: float | None


def parse_progress(line: str) -> Progress | None:
    """A ``train ep E step S loss L val mAP50 V | ...`` line of ``fieldline model train``, else None."""
    m = PROGRESS_LINE.search(line)
    if m is None:
        return None
    val = m.group(4)
    return Progress(int(m.group(1)), int(m.group(2)), float(m.group(3)),
                    float(val) if re.fullmatch(r"[0-9.]+", val) else None)


def run_step(args: list[str], log: Path, cancelled: Callable[[], bool],
             on_line: Callable[[str], None] | None = None, poll_s: float = 0.3) -> str:
    """Run ``fieldline ARGS`` in a worker process; returns its output. Lines (stdout and stderr, merged) go to
    ``log`` and ``on_line``. Raises :class:`Cancelled` (process group killed) or :class:`StepFailed`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ fieldline {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, env=env, start_new_session=True, errors="replace")
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, name="training-step-output", daemon=True).start()
        done = False
        while not done:
            try:
                line = lines.get(timeout=poll_s)
            except queue.Empty:
                line = ""
            else:
                if line is None:
                    done = True
                    line = ""
                else:
                    seen.append(line)
                    out.write(line + "\n")
                    out.flush()
                    if on_line:
                        on_line(line)
            if not done and cancelled():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise Cancelled("cancelled")
        proc.wait()
    if proc.returncode != 0:
        tail = [ln for ln in seen if ln.strip()][-3:]
        raise StepFailed(f"`fieldline {' '.join(args[:2])}` exited {proc.returncode}: " + " | ".join(tail))
    return "\n".join(seen)


def last_json(output: str) -> dict:
    """The last line of ``output`` that is a JSON object (``--json`` outputs)."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise StepFailed("no JSON result in the step's output")
