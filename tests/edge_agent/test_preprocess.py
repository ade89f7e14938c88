import cv2
import numpy as np
import pytest

from edge_agent.detectors.preprocess import letterbox, resize_fast, to_tensor_rgb01


@pytest.mark.parametrize("shape", [(720, 1280), (480, 640), (1080, 1920), (1440, 2560), (721, 1281), (100, 120)])
def test_resize_fast_matches_area_averaging(shape):
    frame = cv2.GaussianBlur((np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    scale = min(320 / shape[1], 320 / shape[0])
    size = (round(shape[1] * scale), round(shape[0] * scale))
    reference = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    fast = resize_fast(frame, *size)
    assert fast.shape == reference.shape
    assert np.abs(fast.astype(int) - reference.astype(int)).mean() < 0.6


@pytest.mark.parametrize("shape", [(720, 1280, 3), (480, 640, 3), (200, 200, 3), (1280, 960, 3), (333, 517, 3)])
def test_fused_letterbox_tensor_equals_the_two_steps(shape: tuple[int, int, int]) -> None:
    from edge_agent.detectors.preprocess import letterbox_rgb01

    img = np.random.default_rng(sum(shape)).integers(0, 255, shape, dtype=np.uint8)
    canvas, lb = letterbox(img, 320)
    fused, lb2 = letterbox_rgb01(img, 320)
    assert lb2 == lb
    np.testing.assert_array_equal(fused, to_tensor_rgb01(canvas))
