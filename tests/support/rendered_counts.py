"""Count a simulated shed's fruits the way the product does: render camera frames, run the detector.

The camera sweeps one row in ``1 / coverage`` (a fixed share of the fruits: every fruit whose index is a
multiple of ``coverage``); the counts per label are scaled up by ``coverage``, as a site would configure
for a camera that films one of four rows. Each frame is a procedural greenhouse view
(``models.data.synth.tomato.random_scene``) whose fruits get the ripeness of the next fruits of that row, so
occlusion by leaves, small far fruits, lighting and the detector's own mistakes are all part of the count.

Calibration (``calibrate``): the detector misses fruit hidden behind leaves and confuses neighbouring stages,
so raw detections are ~half of the fruit. As a site would from a few labelled pictures, a 3x3 matrix M
(detections per label = M x fruits per stage, least squares) is fitted on separately seeded frames whose
stages are known, and counts are corrected by solving M x fruits = detections. The bench's sheds are never
used for it.

Simulator maturity -> synth ripeness: the simulator's stage thresholds (half ripe 0.84, ripe 0.93) are
mapped onto the synth's (0.4, 0.75), linearly within each stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.detectors import OnnxDetector
from models.data.synth.tomato import random_scene, render
from tests.support.ripening_sim import HALF, RIPE, STAGES

MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness-fast.int8.onnx"


def synth_ripeness(maturity: np.ndarray) -> np.ndarray:
    m = np.asarray(maturity, dtype=float)
    green = 0.4 * np.clip(m, 0.0, HALF) / HALF
    half = 0.4 + 0.35 * (m - HALF) / (RIPE - HALF)
    ripe = 0.75 + 0.25 * np.clip((m - RIPE) / 0.1, 0.0, 1.0)
    return np.where(m >= RIPE, ripe, np.where(m >= HALF, half, green))


class RenderedCounter:
    """``count(maturities, alive, rng)`` -> counts per label, from detections on rendered frames."""

    def __init__(self, coverage: int = 4, conf_threshold: float = 0.4, width: int = 640, height: int = 480) -> None:
        self.coverage = coverage
        self.detector = OnnxDetector(MODEL, conf_threshold=conf_threshold, agnostic_nms=True)
        self.width, self.height = width, height
        self.frames = 0
        self.matrix: np.ndarray | None = None

    def calibrate(self, seed: int = 99, frames: int = 150) -> np.ndarray:
        """Fit M on ``frames`` rendered views of known stages (maturities spread over all three stages)."""
        rng = np.random.default_rng(seed)
        true_rows, seen_rows = [], []
        for _ in range(frames):
            sizes = rng.integers(0, 12, 3)  # independent per stage, so M is identifiable
            maturity = rng.permutation(np.concatenate([rng.uniform(0.5, HALF, sizes[0]),
                                                       rng.uniform(HALF, RIPE, sizes[1]),
                                                       rng.uniform(RIPE, RIPE + 0.1, sizes[2])]))
            stage = np.where(maturity >= RIPE, 2, np.where(maturity >= HALF, 1, 0))
            true_rows.append([np.sum(stage == i) for i in range(3)])
            seen = self._detect(synth_ripeness(maturity), rng)
            seen_rows.append([seen[label] for label in STAGES])
        t, o = np.array(true_rows, float), np.array(seen_rows, float)
        self.matrix = np.linalg.lstsq(t, o, rcond=None)[0].T  # o = M t
        return self.matrix

    def count(self, maturity: np.ndarray, alive: np.ndarray, rng: np.random.Generator) -> dict[str, int]:
        index = np.arange(maturity.size)
        seen = self._detect(synth_ripeness(maturity[alive & (index % self.coverage == 0)]), rng)
        raw = np.array([seen[label] for label in STAGES], float)
        if self.matrix is not None:
            raw = np.clip(np.linalg.solve(self.matrix, raw), 0.0, None)
        return {label: int(round(v * self.coverage)) for label, v in zip(STAGES, raw, strict=True)}

    def _detect(self, filmed: np.ndarray, rng: np.random.Generator) -> dict[str, int]:
        counts = dict.fromkeys(STAGES, 0)
        start = 0
        while start < filmed.size:
            scene = random_scene(rng, self.width, self.height)
            take = filmed[start:start + len(scene.fruits)]
            scene.fruits = scene.fruits[:take.size]
            for fruit, ripeness in zip(scene.fruits, take, strict=True):
                fruit.ripeness = float(ripeness)
            start += take.size
            if not scene.fruits:
                continue
            detections = self.detector.detect(render(scene, rng).image)
            self.frames += 1
            for label in detections.label_names():
                if label in counts:
                    counts[label] += 1
        return counts
