"""Wall-clock offset for a soak's edge agent: put this folder on PYTHONPATH and name a file in
``FIELDLINE_SOAK_CLOCK_FILE``; its content (seconds, e.g. ``600`` or ``-600``) is added to ``time.time()`` and
``time.time_ns()``, re-read once a second, so the bench can step the agent's clock like a bad NTP step.

The monotonic clock is untouched (as with a real wall-clock step). libfaketime was tried first: with
``FAKETIME_DONT_FAKE_MONOTONIC`` Python's ``time.sleep`` fails with EINVAL, without it ``Event.wait`` hangs.
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("FIELDLINE_SOAK_CLOCK_FILE")

if _PATH:
    _real_time, _real_time_ns, _monotonic = time.time, time.time_ns, time.monotonic
    _state = {"offset": 0.0, "next": 0.0}

    def _offset() -> float:
        now = _monotonic()
        if now >= _state["next"]:
            _state["next"] = now + 1.0
            try:
                with open(_PATH) as handle:
                    _state["offset"] = float(handle.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return _state["offset"]

    time.time = lambda: _real_time() + _offset()
    time.time_ns = lambda: _real_time_ns() + int(_offset() * 1e9)
