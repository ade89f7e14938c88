"""Camera health checks: which frames are checked, and that a fast loop still sees a covered lens."""

from __future__ import annotations

import numpy as np

from edge_agent.config import CameraAlertsConfig
from edge_agent.health import CHECKS_PER_S, MAX_STRIDE, CameraHealth, check_stride
from edge_agent.rules import ZoneRef


def health(stride: int = 1) -> CameraHealth:
    return CameraHealth("cam-1", ZoneRef("shed", "shed-01"), CameraAlertsConfig(frozen_after_s=2), stride)


def test_a_camera_capped_at_up_to_40_fps_has_every_frame_checked_a_faster_loop_one_in_a_few() -> None:
    assert [check_stride(fps) for fps in (2, 15, 30, CHECKS_PER_S)] == [1, 1, 1, 1]
    assert [check_stride(fps) for fps in (60, 120, float("inf"))] == [2, 3, MAX_STRIDE]
    checker = health(3)
    assert [checker.due() for _ in range(7)] == [True, False, False, True, False, False, True]
    assert all(health().due() for _ in range(5))


def test_a_strided_loop_still_raises_black_and_frozen() -> None:
    checker, black, alerts = health(MAX_STRIDE), np.zeros((48, 64, 3), np.uint8), []
    for k in range(3 * MAX_STRIDE):  # a covered lens for as many frames as three checks need
        now = 50.0 + k / 150
        if checker.due():
            alerts += [a.code for a in checker.on_frame(black, now)]
    assert alerts == ["camera_black"]
    still = np.full((48, 64, 3), 120, np.uint8)
    frozen = [a.code for k in range(150 * 3) if checker.due() for a in checker.on_frame(still, 60.0 + k / 150)]
    assert "camera_frozen" in frozen
