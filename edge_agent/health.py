"""Camera health: black and frozen frames (checked per frame), plus a cooldown gate for every alert."""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_agent.config import CameraAlertsConfig
from edge_agent.rules import AlertOut, ZoneRef
from edge_agent.sources.base import sample_grid

BLACK_FRAMES_IN_A_ROW = 3
GRID_COLS, GRID_ROWS = 64, 48
CHECKS_PER_S = 40.0  # a camera capped at up to 40 fps has every frame checked
MAX_STRIDE = 4  # a faster (or uncapped) loop checks every 2nd to 4th frame


def check_stride(fps: float) -> int:
    """Check every k-th frame of a camera loop capped at ``fps``: 1 up to ``CHECKS_PER_S``, at most ``MAX_STRIDE``.

    Black and frozen pictures last seconds, so a loop running faster than a camera (a file replayed as fast as
    it decodes) loses nothing by checking one frame in a few; counted in frames, not seconds, so a file read a
    few frames at a time has the same frames checked as one read frame by frame.
    """
    return 1 if fps <= CHECKS_PER_S else int(min(MAX_STRIDE, math.ceil(min(fps, 1e6) / CHECKS_PER_S)))


class CameraHealth:
    def __init__(self, camera: str, zone: ZoneRef, config: CameraAlertsConfig, stride: int = 1) -> None:
        self.camera, self.zone, self.config = camera, zone, config
        self._black_run = 0
        self._previous: np.ndarray | None = None
        self._frozen_since: float | None = None
        self.stride = stride  # see ``check_stride``; ``BLACK_FRAMES_IN_A_ROW`` counts checked frames
        self._seen = 0

    def due(self) -> bool:
        """Whether this frame (one call per frame) is to be checked: every ``stride``-th, the first included."""
        self._seen += 1
        return (self._seen - 1) % self.stride == 0

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
