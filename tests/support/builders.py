"""Small builders for wire payloads used across tests."""

from __future__ import annotations

import time
from typing import Any


def event_dict(**overrides: Any) -> dict[str, Any]:
    """A valid ``count`` event as a plain dict; override any field."""
    data: dict[str, Any] = {
        "schema": "fieldline.event/1",
        "id": "dev-1-1-1",
        "device": "dev-1",
        "site": "farm",
        "camera": "cam-1",
        "boot": 1,
        "seq": 1,
        "ts_ms": int(time.time() * 1000),
        "zone": {"kind": "shed", "id": "shed-01", "row": None},
        "kind": "count",
        "model": {"name": "tomato-ripeness", "version": "1.0.0", "sha256": "ab" * 32},
        "detections": [{"label": "ripe", "score": 0.9, "box": [0.1, 0.1, 0.2, 0.2], "track": None}],
        "counts": {"ripe": 1, "half_ripe": 0, "green": 0},
        "verdict": None,
        "track_state": None,
        "historical": False,
        "snapshot": None,
    }
    data.update(overrides)
    return data
