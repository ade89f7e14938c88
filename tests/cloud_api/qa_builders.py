"""Builders for factory inspection events (kind "inspection", zone.kind "line") used by the QA tests."""

from __future__ import annotations

from typing import Any

from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import SITE

Defect = tuple[str, float, tuple[float, float, float, float]]


def inspection_payload(
    line: str, ts_ms: int, verdict: str, *, seq: int, defects: list[Defect] | None = None,
    device: str = "cam-box-1", site: str = SITE, snapshot: str | None = None, boot: int = 0,
) -> dict[str, Any]:
    """A contract-valid inspection event as a JSON-ready dict (one part on a conveyor)."""
    return {
        "schema": "fieldline.event/1",
        "id": f"{device}-{boot}-{seq}",
        "device": device,
        "site": site,
        "camera": "top",
        "boot": boot,
        "seq": seq,
        "ts_ms": ts_ms,
        "zone": {"kind": "line", "id": line, "row": None},
        "kind": "inspection",
        "model": {"name": "neu-det", "version": "1.0", "sha256": "cd" * 32},
        "detections": [
            {"label": label, "score": score, "box": list(box), "track": None} for label, score, box in defects or []
        ],
        "counts": {},
        "verdict": verdict,
        "track_state": None,
        "historical": False,
        "snapshot": snapshot,
    }


def inspection(line: str, ts_ms: int, verdict: str, **kwargs: Any) -> Event:
    return Event.model_validate(inspection_payload(line, ts_ms, verdict, **kwargs))
