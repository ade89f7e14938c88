"""A synthetic greenhouse camera: a persistent rendered shed whose fruits ripen as (simulated) time passes."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from edge_agent.config import SyntheticSource
from edge_agent.sources.base import Frame, Source, now_ms
from models.data.synth.tomato import random_scene, render


class SyntheticCamera(Source):
    """Renders the same shed every frame; ripeness grows by ``ripening_per_hour`` of simulated time."""

    def __init__(self, config: SyntheticSource, clock: callable = time.monotonic) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        self.scene = random_scene(np.random.default_rng(config.seed), config.width, config.height)
        self._clock = clock
        self._last = clock()
        self._index = 0
        self.last_truth: dict[str, int] = {}

    def _ripen(self) -> None:
        now = self._clock()
        sim_hours = (now - self._last) * self.config.time_scale / 3600.0
        self._last = now
        if sim_hours <= 0 or self.config.ripening_per_hour == 0:
            return
        for fruit in self.scene.fruits:
            fruit.ripeness = min(1.0, fruit.ripeness + self.config.ripening_per_hour * sim_hours)

    def read(self) -> Frame:
        self._ripen()
        rendered = render(self.scene, self._rng)
        self.last_truth = dict(Counter(rendered.labels))
        frame = Frame(rendered.image, now_ms(), self._index, truth=self.last_truth)
        self._index += 1
        return frame
