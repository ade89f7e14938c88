"""Counts through the detector on rendered frames (the bench's camera path) are near the truth once calibrated."""

from __future__ import annotations

import numpy as np

from tests.support.rendered_counts import RenderedCounter, synth_ripeness
from tests.support.ripening_sim import HALF, RIPE


def test_stage_thresholds_map_onto_the_synth_classes() -> None:
    np.testing.assert_allclose(synth_ripeness(np.array([0.0, HALF, RIPE, 2.0])), [0.0, 0.4, 0.75, 1.0])


def test_calibrated_detector_counts_are_closer_to_the_truth_than_raw_detections() -> None:
    counter = RenderedCounter(coverage=1, width=320, height=240)
    rng = np.random.default_rng(3)
    maturity = np.concatenate([rng.uniform(0.3, HALF, 150), rng.uniform(HALF, RIPE, 40),
                               rng.uniform(RIPE, RIPE + 0.1, 40)])
    alive = np.ones(maturity.size, dtype=bool)
    raw = counter.count(maturity, alive, np.random.default_rng(4))
    counter.calibrate(seed=11, frames=60)
    corrected = counter.count(maturity, alive, np.random.default_rng(4))
    truth = {"green": 150, "half_ripe": 40, "ripe": 40}
    assert sum(raw.values()) < 0.8 * 230  # leaves hide fruit, the detector misses some
    raw_error = sum(abs(raw[k] - v) for k, v in truth.items())
    corrected_error = sum(abs(corrected[k] - v) for k, v in truth.items())
    assert corrected_error < 0.6 * raw_error, (raw, corrected)
    assert abs(sum(corrected.values()) - 230) < 0.2 * 230, corrected
