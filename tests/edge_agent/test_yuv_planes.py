"""YUV 4:2:0 -> R, G, B planes at the network's size: colour matrices and area scaling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.sources.yuv_planes import conversion_matrix, fit_plane, yuv420_to_planes


def textured_rgb(width: int = 640, height: int = 360) -> np.ndarray:
    rng = np.random.default_rng(3)
    return cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (0, 0), 4)


def i420_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V planes as a video encoder makes them (OpenCV: BT.601, limited range)."""
    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    return yuv[:h], yuv[h:h + h // 4].reshape(h // 2, w // 2), yuv[h + h // 4:].reshape(h // 2, w // 2)


@pytest.mark.parametrize(("frame", "size"), [
    ((640, 360), (320, 180)), ((640, 360), (160, 90)), ((640, 360), (213, 120)),  # factors 2, 4, a fraction
    ((1280, 720), (576, 324)), ((1920, 1080), (576, 324)),  # tomato-ripeness's 576 input: a factor below 2 left
    ((1280, 720), (960, 540)),  # chroma enlarged: output wider than the chroma planes
])
def test_planes_match_an_area_resize_of_the_full_picture(frame: tuple[int, int], size: tuple[int, int]) -> None:
    rgb = textured_rgb(*frame)
    red, green, blue = yuv420_to_planes(*i420_planes(rgb), *size, conversion_matrix("bt601"))
    area = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(int)
    for plane, channel in ((red, 0), (green, 1), (blue, 2)):
        assert plane.shape == (size[1], size[0]) and plane.dtype == np.uint8
        assert np.abs(plane.astype(int) - area[:, :, channel]).mean() < 2.0  # chroma subsampling + rounding


def test_halving_steps_give_the_box_average_within_rounding() -> None:
    plane = textured_rgb()[:, :, 1]
    box = plane.reshape(90, 4, 160, 4).mean(axis=(1, 3))
    assert np.abs(fit_plane(plane, 160, 90).astype(float) - box).max() <= 1.0
    assert fit_plane(plane, 640, 360) is plane  # already the size: no copy


def test_limited_range_bt601_agrees_with_opencv_and_full_range_with_jpeg_levels() -> None:
    y, u, v = np.array([[16, 235, 81, 145]], np.uint8), np.array([[128, 128, 90, 54]], np.uint8), \
        np.array([[128, 128, 240, 34]], np.uint8)
    rgb = cv2.transform(cv2.merge([y, u, v]), conversion_matrix("bt601"))[0]
    assert rgb[0].tolist() == [0, 0, 0] and rgb[1].tolist() == [255, 255, 255]  # video black and white
    assert np.abs(rgb[2].astype(int) - [255, 0, 0]).max() <= 2  # BT.601 red
    assert np.abs(rgb[3].astype(int) - [0, 255, 0]).max() <= 2  # BT.601 green
    full = cv2.transform(cv2.merge([np.array([[0, 255]], np.uint8), np.full((1, 2), 128, np.uint8),
                                    np.full((1, 2), 128, np.uint8)]), conversion_matrix("bt601", full_range=True))
    assert full[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    jpeg = textured_rgb(64, 32)  # OpenCV's YCrCb is full-range BT.601 (Cr before Cb)
    ycrcb = cv2.cvtColor(jpeg, cv2.COLOR_RGB2YCrCb)
    back = cv2.transform(ycrcb[:, :, [0, 2, 1]].copy(), conversion_matrix("bt601", full_range=True))
    assert np.abs(back.astype(int) - jpeg).max() <= 2


def test_bt709_red_is_red_where_bt601_would_shift_it() -> None:
    red_709 = cv2.merge([np.array([[63]], np.uint8), np.array([[102]], np.uint8), np.array([[240]], np.uint8)])
    assert np.abs(cv2.transform(red_709, conversion_matrix("bt709"))[0, 0].astype(int) - [255, 0, 0]).max() <= 2
    assert cv2.transform(red_709, conversion_matrix("bt601"))[0, 0, 0] < 240  # the wrong matrix dims it (233)
