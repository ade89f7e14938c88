"""Camera health: black and frozen frames (checked per frame), plus a cooldown gate for every alert."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.config import CameraAlertsConfig
from edge_agent.rules import AlertOut, ZoneRef
from edge_agent.sources.base import sample_grid

BLACK_FRAMES_IN_A_ROW = 3
GRID_COLS, GRID_ROWS = 64, 48
CHECKS_PER_S = 40.0  # a camera at up to 40 fps has every frame checked; a faster loop (a file) one in k


class CameraHealth:
    def __init__(self, camera: str, zone: ZoneRef, config: CameraAlertsConfig) -> None:
        self.camera, self.zone, self.config = camera, zone, config
        self._black_run = 0
        self._previous: np.ndarray | None = None
        self._frozen_since: float | None = None
        self._next_check_s = float("-inf")

    def due(self, now_s: float) -> bool:
        """Whether the frame seen at ``now_s`` should be checked: at most ``CHECKS_PER_S`` a second.

        Black and frozen pictures last seconds, so a loop running faster than a camera (a file replayed at
        150 fps) loses nothing by checking one frame in a few; a live camera at its frame rate is checked on
        every frame, as before.
        """
        if now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + 1.0 / CHECKS_PER_S - 1e-3  # a millisecond of slack for frame-time jitter
        return True

    def on_frame(self, image: np.ndarray, now_s: float) -> list[AlertOut]:
        """Checks one picture (BGR or grey, any size)."""
        return self.on_grid(np.ascontiguousarray(sample_grid(image, GRID_COLS, GRID_ROWS)), now_s)

    def on_grid(self, grid: np.ndarray, now_s: float) -> list[AlertOut]:
        """Checks a picture already reduced to a grid of single pixels (``Frame.grid``).

        A 64x48 grid is plenty for brightness and change: ~3000 pixels, not 900k on 720p (a frozen stream
        repeats every pixel exactly, so no averaging is needed to see it).
        """
        small = cv2.cvtColor(grid, cv2.COLOR_BGR2GRAY) if grid.ndim == 3 else grid.copy()  # kept for the next frame
        alerts = []
        self._black_run = self._black_run + 1 if cv2.mean(small)[0] < self.config.black_level else 0
        if self._black_run == BLACK_FRAMES_IN_A_ROW:
            alerts.append(AlertOut("camera_black", "warning", f"camera {self.camera}: the picture is black "
                                   "(lens covered, lights off or a dead sensor)", f"camera_black:{self.camera}",
                                   self.zone))
        previous, self._previous = self._previous, small
        if previous is not None and previous.shape == small.shape and cv2.norm(small, previous, cv2.NORM_INF) <= 1:
            self._frozen_since = self._frozen_since if self._frozen_since is not None else now_s
            if now_s - self._frozen_since >= self.config.frozen_after_s:
                alerts.append(AlertOut("camera_frozen", "warning", f"camera {self.camera}: the picture has not "
                                       f"changed for {now_s - self._frozen_since:.0f} s", f"camera_frozen:{self.camera}",
                                       self.zone))
        else:
            self._frozen_since = None
        return alerts

    def offline(self, silent_s: float) -> AlertOut:
        return AlertOut("camera_offline", "critical", f"camera {self.camera}: no frame for {silent_s:.0f} s",
                        f"camera_offline:{self.camera}", self.zone)

    def model_error(self, error: Exception) -> AlertOut:
        return AlertOut("model_error", "critical", f"camera {self.camera}: the detector failed: {error}",
                        f"model_error:{self.camera}", self.zone)


class AlertGate:
    """Lets an alert through once per ``cooldown_s`` for each dedup key."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self.suppressed = 0

    def allow(self, dedup_key: str, now_s: float, cooldown_s: float) -> bool:
        last = self._last.get(dedup_key)
        if last is not None and now_s - last < cooldown_s:
            self.suppressed += 1
            return False
        self._last[dedup_key] = now_s
        return True
