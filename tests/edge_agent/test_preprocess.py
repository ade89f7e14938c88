import cv2
import numpy as np
import pytest

from edge_agent.detectors.preprocess import resize_fast


@pytest.mark.parametrize("shape", [(720, 1280), (480, 640), (1080, 1920), (1440, 2560), (721, 1281), (100, 120)])
def test_resize_fast_matches_area_averaging(shape):
    frame = cv2.GaussianBlur((np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    scale = min(320 / shape[1], 320 / shape[0])
    size = (round(shape[1] * scale), round(shape[0] * scale))
    reference = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    fast = resize_fast(frame, *size)
    assert fast.shape == reference.shape
    assert np.abs(fast.astype(int) - reference.astype(int)).mean() < 0.6
