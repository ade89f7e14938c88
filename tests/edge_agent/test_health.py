"""Camera health checks: how often a frame is checked, and that a fast loop still sees a covered lens."""

from __future__ import annotations

import numpy as np

from edge_agent.config import CameraAlertsConfig
from edge_agent.health import CHECKS_PER_S, CameraHealth
from edge_agent.rules import ZoneRef


def health() -> CameraHealth:
    return CameraHealth("cam-1", ZoneRef("shed", "shed-01"), CameraAlertsConfig(frozen_after_s=2))


def test_a_camera_at_its_frame_rate_has_every_frame_checked() -> None:
    for fps in (5, 15, 30, CHECKS_PER_S):
        checker = health()
        assert all(checker.due(1000.0 + k / fps) for k in range(200)), fps


def test_a_faster_loop_is_checked_at_most_the_set_rate_a_second() -> None:
    checker = health()
    checked = sum(checker.due(1000.0 + k / 150) for k in range(150))  # one second of a file at 150 fps
    assert CHECKS_PER_S * 0.9 <= checked <= CHECKS_PER_S + 1


def test_a_fast_loop_still_raises_black_and_frozen_within_a_fraction_of_a_second() -> None:
    checker, black, alerts = health(), np.zeros((48, 64, 3), np.uint8), []
    for k in range(30):  # 0.2 s of a covered lens at 150 fps
        now = 50.0 + k / 150
        if checker.due(now):
            alerts += [(a.code, k) for a in checker.on_frame(black, now)]
    assert [code for code, _ in alerts] == ["camera_black"] and alerts[0][1] <= 3 * 150 / CHECKS_PER_S
    still = np.full((48, 64, 3), 120, np.uint8)
    frozen = [a.code for k in range(150 * 3) if checker.due(now := 60.0 + k / 150)
              for a in checker.on_frame(still, now)]
    assert "camera_frozen" in frozen
