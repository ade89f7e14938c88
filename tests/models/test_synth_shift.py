"""The shifted greenhouse (``synth:tomato-shift``) is opt-in: ``synth:tomato`` renders byte for byte as before."""

from __future__ import annotations

import hashlib

import numpy as np

from models.data.sources import DataSource
from models.data.synth.tomato import SHIFT, Shift, fruit_colour, random_scene, render, shifted_scene

# sha256 over 20 frames of synth:tomato (seed 77: images, boxes, labels), recorded before the shift existed
DEFAULT_FRAMES_SHA256 = "9b3f952d772638eedd80c512c9a7a44a703de8ac1e5dc254fabbf14c62636319"


def frames_digest(spec: str) -> str:
    h = hashlib.sha256()
    for img, boxes, labels in DataSource.parse(spec).frames("test", 20, 77):
        h.update(img.tobytes())
        h.update(boxes.tobytes())
        h.update("|".join(labels).encode())
    return h.hexdigest()


def test_default_generator_output_is_unchanged():
    assert frames_digest("synth:tomato") == DEFAULT_FRAMES_SHA256


def test_shifted_greenhouse_has_yellow_fruit_dusk_and_a_closer_camera():
    assert frames_digest("synth:tomato-shift") != DEFAULT_FRAMES_SHA256
    varieties, dim, radii, plain_radii = [], 0, [], []
    for i in range(30):
        plain = random_scene(np.random.default_rng([5, i]))
        scene = shifted_scene(np.random.default_rng([5, i]))
        assert len(scene.fruits) == len(plain.fruits)  # the same view, moved into the new greenhouse
        varieties += [f.variety for f in scene.fruits]
        radii += [f.radius for f in scene.fruits]
        plain_radii += [f.radius for f in plain.fruits]
        dim += scene.light.gain < 0.65
    assert 0.4 < varieties.count("yellow") / len(varieties) < 0.8
    assert 8 <= dim <= 26  # dusk in about SHIFT.dusk of the frames
    assert np.isclose(np.mean(radii) / np.mean(plain_radii), SHIFT.zoom)
    # a ripe yellow fruit is golden, a ripe red one red: the colour that names the class moved
    b, g, r = fruit_colour(0.95, variety="yellow")
    assert g > 0.6 * r and b < g
    assert fruit_colour(0.95) != (b, g, r)


def test_a_shift_without_yellow_or_dusk_keeps_the_boxes_scaled_around_the_centre():
    rng_a, rng_b = np.random.default_rng([9, 0]), np.random.default_rng([9, 0])
    zoomless = shifted_scene(rng_a, shift=Shift(yellow=0.0, dusk=0.0, zoom=1.0))
    plain = random_scene(rng_b)
    assert [(f.x, f.y, f.radius) for f in zoomless.fruits] == [(f.x, f.y, f.radius) for f in plain.fruits]
    assert all(f.variety == "red" for f in zoomless.fruits)
    boxes = render(zoomless, np.random.default_rng(1)).boxes
    assert np.array_equal(boxes, render(plain, np.random.default_rng(1)).boxes)
