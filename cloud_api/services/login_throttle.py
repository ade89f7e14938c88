"""Failed-login throttle: per user name + address, per user name, per address; lock-outs back off.

Three counters see every failure: the pair (user name, address) locks after ``max_failures`` within
``window_s``; the user name alone (guessing from many addresses) and the address alone (trying many names)
lock after ``max_failures * spread_factor``. Each further lock-out of the same key doubles its length, up to
``max_lockout_s``; a quiet ``window_s`` after a lock-out ends resets that doubling. A success clears the
pair's and the user's counters, never the address's. Every failure and lock-out is logged
(``cloud_api.services.login_throttle``); passwords never are.

Per API process and in memory (a restart forgets it); with several workers behind a load balancer each keeps
its own count, which still bounds guessing per worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, user name, address); kind "pair" | "user" | "address"


@dataclass
class _State:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    lockouts: int = 0  # lock-outs in a row, for the back-off


class LoginThrottle:
    """``retry_after`` before verifying a password; ``failed`` / ``succeeded`` after."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, lockout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000, *,
                 spread_factor: int = 4, max_lockout_s: float = 3600.0) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self.spread_factor, self.max_lockout_s = spread_factor, max_lockout_s
        self._clock = clock
        self._max_keys = max_keys
        self._states: dict[Key, _State] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, address: str) -> tuple[Key, Key, Key]:
        name = username.lower()
        return ("pair", name, address), ("user", name, ""), ("address", "", address)

    def _limit(self, key: Key) -> int:
        return self.max_failures if key[0] == "pair" else self.max_failures * self.spread_factor

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this user name may try again from this address (0: go ahead)."""
        now = self._clock()
        with self._lock:
            waits = [s.locked_until - now for k in self._keys(username, address) if (s := self._states.get(k))]
        return max([0.0, *waits])

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        log.info("login failed for user name %r from %s", username, address)
        with self._lock:
            if len(self._states) >= self._max_keys:  # a flood of random names must not grow memory
                self._forget_old(now)
            for key in self._keys(username, address):
                state = self._states.setdefault(key, _State())
                if state.lockouts and now - state.locked_until > self.window_s:
                    state.lockouts = 0  # quiet long enough since the last lock-out ended
                state.failures = [t for t in state.failures if now - t < self.window_s] + [now]
                if len(state.failures) >= self._limit(key):
                    length = min(self.max_lockout_s, self.lockout_s * 2 ** state.lockouts)
                    state.locked_until, state.lockouts, state.failures = now + length, state.lockouts + 1, []
                    log.warning("login locked out for %.0f s (%s %s, %d failures; lock-out %d in a row)",
                                length, key[0], _describe(key), self._limit(key), state.lockouts)

    def succeeded(self, username: str, address: str) -> None:
        pair, user, _ = self._keys(username, address)
        with self._lock:
            self._states.pop(pair, None)
            self._states.pop(user, None)

    def _forget_old(self, now: float) -> None:
        self._states = {k: s for k, s in self._states.items()
                        if (s.failures and now - s.failures[-1] < self.window_s) or s.locked_until > now
                        or (s.lockouts and now - s.locked_until <= self.window_s)}


def _describe(key: Key) -> str:
    kind, name, address = key
    if kind == "pair":
        return f"{name!r} from {address}"
    return repr(name) if kind == "user" else address
