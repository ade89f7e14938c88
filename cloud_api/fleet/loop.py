"""A background pass repeated on a timer or on demand, shared by the command dispatcher and the rollout engine."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicLoop:
    """A daemon thread calling ``run_once`` every ``tick_s``, or at once after ``wake()``, until ``stop()``.

    A pass that raises is logged and the next one runs: a locked database or a broker hiccup must not end
    the loop. Subclasses implement ``run_once`` and may check ``stopping`` inside a long pass.
    """

    thread_name = "fieldline-loop"

    def __init__(self, tick_s: float) -> None:
        self._tick_s = tick_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_once(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - see the class docstring
                log.exception("%s pass failed", self.thread_name)
            self._wake.wait(self._tick_s)
