"""Failed-login throttle: after too many wrong passwords for one user name from one address, wait.

Per API process and in memory (a restart forgets it); with several workers behind a load balancer each
keeps its own count, which still bounds guessing to ``max_failures`` per lockout per worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LoginThrottle:
    """``check`` before verifying a password; ``failed`` / ``succeeded`` after."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, lockout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this user name may try again from this address (0: go ahead)."""
        with self._lock:
            until = self._locked_until.get((username.lower(), address), 0.0)
            return max(0.0, until - self._clock())

    def failed(self, username: str, address: str) -> None:
        key, now = (username.lower(), address), self._clock()
        with self._lock:
            if len(self._failures) >= self._max_keys:  # a flood of random names must not grow memory
                self._forget_old(now)
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
            self._failures[key] = recent
            if len(recent) >= self.max_failures:
                self._locked_until[key] = now + self.lockout_s
                self._failures[key] = []

    def succeeded(self, username: str, address: str) -> None:
        key = (username.lower(), address)
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)

    def _forget_old(self, now: float) -> None:
        self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.window_s}
        self._locked_until = {k: t for k, t in self._locked_until.items() if t > now}
