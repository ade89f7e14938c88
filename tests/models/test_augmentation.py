"""Training-time augmentation and its options (no training run needed)."""

from __future__ import annotations

import numpy as np
# the train extra is in the test environment (scripts/test.sh): a missing or broken torch fails, never skips
import torch  # noqa: F401


def test_scale_augmentation_follows_the_configured_range() -> None:
    """70 % of the samples are rescaled by a factor drawn from scale_range, the rest kept at 1.0."""
    from models.detect.train import augment

    img = np.full((100, 100, 3), 90, np.uint8)
    box = np.array([[40, 40, 60, 60]], np.float32)  # 20 px, centred: stays whole on a 256 canvas
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(200):
        _, b, _ = augment(img, box, np.array([0]), rng, size=256, scale_range=(1.8, 1.9))
        sides.append(float(b[0, 2] - b[0, 0]))
    scaled = [s for s in sides if abs(s - 20) > 0.5]
    assert all(35.5 <= s <= 38.5 for s in scaled), sorted(set(round(s, 1) for s in scaled))  # 20 x 1.8-1.9
    assert 0.6 <= len(scaled) / len(sides) <= 0.8  # the other ~30 % at scale 1.0 (exactly 20 px)
    assert all(abs(s - 20) <= 0.5 or 35.5 <= s <= 38.5 for s in sides)


def test_train_cli_refuses_a_bad_scale_range() -> None:
    from typer.testing import CliRunner

    from models.cli.app import model_app

    r = CliRunner().invoke(model_app, ["train", "--scale-range", "1.5"])
    assert r.exit_code == 2 and "--scale-range '1.5': expected LO,HI" in r.output
