"""Simulated cameras for ``fieldline demo`` that drop one picture per frame into a watched folder.

The edge agents read them with their ordinary ``folder`` source in ``watch`` mode, as they would read a
line-scan camera or a PLC that saves one image per part. So everything after the picture (detector, rules,
spool, MQTT, API) is the real product, and what the demo simulates is only the scene in front of the camera:

* :class:`PartMaker`: steel strips or tiles from :mod:`models.data.synth.surface`, each defective with a base
  probability that rises while a :class:`Periodic` drift is on (a worn roller, a gripper chipping edges);
* :class:`ShedCameraMaker`: a greenhouse view from :class:`edge_agent.sources.synthetic.SyntheticCamera`;
* :class:`FolderFeed`: writes one maker's pictures at a fixed period (written under a temporary name, then
  renamed, so the agent never reads half a file), keeps only the newest files, and writes nothing while its
  outage is on: the agent's watchdog then raises ``camera_offline`` and the pictures come back after it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import SyntheticSource
from edge_agent.sources.synthetic import SyntheticCamera
from models.data.synth.surface import DEFECT_KINDS, random_defect, random_surface, render_surface

log = logging.getLogger(__name__)
KEEP_FILES = 60  # newest pictures kept in a feed folder: a minute of backlog at one part per second
IMAGE_SUFFIX = ".jpg"


class FeedError(RuntimeError):
    """A feed that cannot write its pictures (the message names the folder)."""


@dataclass(frozen=True)
class Periodic:
    """On for ``length_s`` starting ``first_s`` after the start, then again every ``every_s`` (0: once)."""

    first_s: float
    length_s: float
    every_s: float = 0.0

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.length_s <= 0 or self.every_s < 0:
            raise ValueError(f"Periodic needs first_s >= 0, length_s > 0, every_s >= 0: {self}")
        if self.every_s and self.every_s <= self.length_s:
            raise ValueError(f"Periodic every_s ({self.every_s}) must exceed length_s ({self.length_s})")

    def active(self, elapsed_s: float) -> bool:
        since = elapsed_s - self.first_s
        if since < 0:
            return False
        if self.every_s:
            since %= self.every_s
        return since < self.length_s


@dataclass(frozen=True)
class DefectMix:
    """How often a part is defective and which defect kinds it gets (weights, normalised here)."""

    rate: float
    kinds: dict[str, float]

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"defect rate must be within 0..1, got {self.rate}")
        unknown = set(self.kinds) - set(DEFECT_KINDS)
        if unknown or not self.kinds or min(self.kinds.values()) <= 0:
            raise ValueError(f"defect kinds must be positive weights of {', '.join(DEFECT_KINDS)}: {self.kinds}")


class PartMaker:
    """One inspected part per call: a greyscale surface (as BGR), defective per the normal or drift mix."""

    def __init__(self, name: str, normal: DefectMix, drift: DefectMix, drift_when: Periodic, seed: int,
                 size: int = 256) -> None:
        self.name, self.normal, self.drift, self.drift_when = name, normal, drift, drift_when
        self.size = size
        self._rng = np.random.default_rng(seed)
        self.made = 0
        self.defective = 0  # ground truth, for tests and logs
        self.drifting = False

    def mix(self, elapsed_s: float) -> DefectMix:
        return self.drift if self.drift_when.active(elapsed_s) else self.normal

    def __call__(self, elapsed_s: float) -> np.ndarray:
        mix = self.mix(elapsed_s)
        if (mix is self.drift) != self.drifting:
            self.drifting = mix is self.drift
            log.info("demo %s: drift %s (defect rate %.0f%%)", self.name, "starts" if self.drifting else "ends",
                     100 * mix.rate)
        rng = self._rng
        defective = bool(rng.uniform() < mix.rate)
        kinds = tuple(mix.kinds)
        weights = np.array([mix.kinds[k] for k in kinds], float)
        surface = random_surface(rng, self.size, defective=False)
        if defective:
            kind = str(rng.choice(kinds, p=weights / weights.sum()))
            surface.defects = [random_defect(rng, self.size, kind)]
        image, _, _, _ = render_surface(surface, rng)
        self.made += 1
        self.defective += defective
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


class ShedCameraMaker:
    """A greenhouse camera's next picture (the rendered shed ripens with simulated time)."""

    def __init__(self, source: SyntheticSource) -> None:
        self._camera = SyntheticCamera(source)

    def __call__(self, elapsed_s: float) -> np.ndarray:  # noqa: ARG002 - the scene keeps its own clock
        return self._camera.read().image


class FolderFeed:
    """Writes ``make(elapsed_s)`` into ``folder`` every ``period_s`` (none while ``outage`` is on)."""

    def __init__(self, name: str, folder: Path, make: Callable[[float], np.ndarray], period_s: float,
                 outage: Periodic | None = None, keep: int = KEEP_FILES, jpeg_quality: int = 90,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if period_s <= 0:
            raise ValueError(f"feed {name}: period_s must be > 0, got {period_s}")
        self.name, self.folder, self.make, self.period_s = name, folder, make, period_s
        self.outage, self.keep, self.jpeg_quality = outage, max(1, keep), jpeg_quality
        self._clock = clock
        self._serial = 0
        self.written = 0
        self.skipped = 0  # frames not written because of the outage
        self.offline = False
        self._thread: threading.Thread | None = None

    def prepare(self) -> None:
        """Create the folder and remove pictures left by an earlier run (the agent would read them as new)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in self.folder.iterdir():
                if path.suffix in (IMAGE_SUFFIX, ".tmp"):
                    path.unlink()
        except OSError as exc:
            raise FeedError(f"feed {self.name}: cannot prepare {self.folder}: {exc}") from None

    def step(self, elapsed_s: float) -> Path | None:
        """Write one picture now (or skip it during the outage); returns the file written."""
        offline = self.outage is not None and self.outage.active(elapsed_s)
        if offline != self.offline:
            self.offline = offline
            log.info("demo camera %s: %s", self.name, "goes offline" if offline else "is back")
        if offline:
            self.skipped += 1
            return None
        ok, jpeg = cv2.imencode(IMAGE_SUFFIX, self.make(elapsed_s), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise FeedError(f"feed {self.name}: JPEG encoding failed")
        self._serial += 1
        path = self.folder / f"{self.name}-{self._serial:09d}{IMAGE_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, path)  # the folder source only lists image suffixes: it never sees the .tmp
        self.written += 1
        self._prune()
        return path

    def _prune(self) -> None:
        files = sorted(p for p in self.folder.iterdir() if p.suffix == IMAGE_SUFFIX)
        for old in files[:-self.keep]:
            old.unlink(missing_ok=True)

    def run(self, stop: threading.Event, started_s: float | None = None) -> None:
        start = self._clock() if started_s is None else started_s
        next_at = self._clock()
        while not stop.is_set():
            try:
                self.step(self._clock() - start)
            except (OSError, FeedError) as exc:
                log.error("demo camera %s: %s", self.name, exc)
            next_at = max(next_at + self.period_s, self._clock())  # late (a busy CPU): no burst to catch up
            stop.wait(next_at - self._clock())

    def start(self, stop: threading.Event, started_s: float | None = None) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, args=(stop, started_s), name=f"feed-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self._thread


def start_feeds(feeds: Sequence[FolderFeed], stop: threading.Event) -> list[threading.Thread]:
    """Start every feed on one shared clock, so schedules line up across feeds."""
    started = time.monotonic()
    return [feed.start(stop, started) for feed in feeds]
