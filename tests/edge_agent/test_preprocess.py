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


def test_planes_to_letterboxed_tensor_matches_letterbox_and_rejects_oversized_planes():
    from edge_agent.detectors.preprocess import letterbox_rgb01, planes_to_letterboxed_rgb01

    picture = np.random.default_rng(3).integers(0, 255, (180, 320, 3), np.uint8)
    planes = (picture[:, :, 2].copy(), picture[:, :, 1].copy(), picture[:, :, 0].copy())
    tensor, lb = planes_to_letterboxed_rgb01(planes, 320)
    expected, expected_lb = letterbox_rgb01(picture, 320)
    np.testing.assert_array_equal(tensor, expected)
    assert (lb.pad_x, lb.pad_y) == (expected_lb.pad_x, expected_lb.pad_y) == (0, 70)
    with pytest.raises(ValueError, match="400x180 do not fit a 320x320"):
        planes_to_letterboxed_rgb01(tuple(np.zeros((180, 400), np.uint8) for _ in range(3)), 320)


def test_tight_canvas_centres_the_picture_in_a_non_square_tensor():
    from edge_agent.detectors.preprocess import PAD_VALUE, PlanesCanvas, letterbox_rgb01, planes_to_letterboxed_rgb01

    picture = np.random.default_rng(5).integers(0, 255, (480, 640, 3), np.uint8)
    tensor, lb = letterbox_rgb01(picture, 512, canvas=(512, 416))  # fitted 512x384, padded to 416 high
    square, square_lb = letterbox_rgb01(picture, 512)
    assert tensor.shape == (1, 3, 416, 512) and (lb.pad_x, lb.pad_y) == (0, 16) and square_lb.pad_y == 64
    np.testing.assert_array_equal(tensor[:, :, 16:400], square[:, :, 64:448])  # the same picture pixels
    assert np.all(tensor[:, :, :16] == np.float32(PAD_VALUE) * np.float32(1 / 255))
    assert lb.scale == square_lb.scale == 0.8
    planes = tuple(np.ascontiguousarray(picture[::2, ::2, c][:240, :320]) for c in (2, 1, 0))
    canvas = PlanesCanvas(320, 240, (320, 256))
    np.testing.assert_array_equal(canvas.write(planes), planes_to_letterboxed_rgb01(planes, (320, 256))[0])
    assert canvas.tensor.shape == (1, 3, 256, 320) and canvas.letterbox.pad_y == 8
    with pytest.raises(ValueError, match="320x240 do not fit a 320x224"):
        planes_to_letterboxed_rgb01(planes, (320, 224))


def test_planes_canvas_reuses_one_tensor_and_keeps_its_padding():
    from edge_agent.detectors.preprocess import PlanesCanvas, planes_to_letterboxed_rgb01

    canvas = PlanesCanvas(320, 180, 320)
    rng = np.random.default_rng(4)
    for _ in range(3):  # each write replaces the picture; the padding written once stays right
        planes = tuple(rng.integers(0, 255, (180, 320), np.uint8) for _ in range(3))
        tensor = canvas.write(planes)
        expected, lb = planes_to_letterboxed_rgb01(planes, 320)
        np.testing.assert_array_equal(tensor, expected)
        assert tensor is canvas.tensor and (canvas.letterbox.pad_x, canvas.letterbox.pad_y) == (lb.pad_x, lb.pad_y)


def test_planes_canvas_writes_side_padded_and_strided_planes_and_names_a_wrong_size():
    from edge_agent.detectors.preprocess import PlanesCanvas, planes_to_letterboxed_rgb01

    canvas = PlanesCanvas(200, 320, 320)  # a portrait picture: padded left and right, rows not contiguous
    bgr = np.random.default_rng(5).integers(0, 256, (320, 200, 3), np.uint8)
    planes = (bgr[:, :, 2], bgr[:, :, 1], bgr[:, :, 0])  # views with a 3-byte pixel step
    np.testing.assert_array_equal(canvas.write(planes), planes_to_letterboxed_rgb01(planes, 320)[0])
    with pytest.raises(ValueError, match="uint8 planes of 200x320"):
        canvas.write(tuple(p[:300] for p in planes))
