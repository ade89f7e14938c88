"""Letterbox resize shared by all ONNX decoders (and by calibration/training code)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How a frame was mapped into the square network input: input = frame * scale + pad."""

    scale: float
    pad_x: int
    pad_y: int
    width: int  # original frame size
    height: int
    scale_y: float | None = None  # a different vertical scale (stretch resize); None: same as ``scale``

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scales, pads, frame size) as (4,) float32 rows for xyxy boxes; made once per letterbox (a camera's
        letterbox is kept and used on every frame)."""
        sy = self.scale if self.scale_y is None else self.scale_y
        return (np.array([self.scale, sy, self.scale, sy], np.float32),
                np.array([self.pad_x, self.pad_y] * 2, np.float32),
                np.array([self.width, self.height] * 2, np.float32))

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map boxes from network-input pixels back to original-frame pixels, clipped."""
        scales, pads, size = self._arrays
        out = np.subtract(np.asarray(xyxy, np.float32), pads)
        np.divide(out, scales, out=out)
        np.maximum(out, 0, out=out)
        return np.minimum(out, size, out=out)

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        scales, pads, _ = self._arrays
        return np.asarray(xyxy, np.float32) * scales + pads


def resize_fast(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking, at about a quarter of ``INTER_AREA``'s cost on 720p.

    A bilinear resize by exactly one half averages each 2x2 block, which is what ``INTER_AREA`` does; so
    big reductions halve with ``INTER_LINEAR`` first and finish with ``INTER_AREA`` on a small image.
    """
    h, w = frame.shape[:2]
    if (width, height) == (w, h):
        return frame
    if width > w or height > h:
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
    # only exact power-of-two reductions of 4x or more: there the halving is exact and INTER_AREA is slow
    while w % width == 0 and w // width in (4, 8, 16) and h >= 2 * height and h % 2 == 0:
        frame = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
        h, w = frame.shape[:2]
    return frame if (width, height) == (w, h) else cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def fitted_size(width: int, height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The size a ``width`` x ``height`` picture takes inside a box, keeping its aspect ratio (letterbox)."""
    scale = min(box_width / width, box_height / height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio, centre on a ``size``x``size`` canvas padded with 114."""
    return fit_to_input(frame, size, size)


ResizeMode = Literal["letterbox", "letterbox_top_left", "stretch"]


def fit_to_input(frame: np.ndarray, height: int, width: int, mode: ResizeMode = "letterbox",
                 pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Map a frame onto a ``height``x``width`` network input.

    ``letterbox``: keep the aspect ratio, centre, pad with ``pad_value`` (FieldLine, Ultralytics);
    ``letterbox_top_left``: the same, image in the top-left corner (YOLOX); ``stretch``: plain resize.
    """
    h, w = frame.shape[:2]
    if mode == "stretch":
        sx, sy = width / w, height / h
        interp = cv2.INTER_AREA if sx * sy < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(frame, (width, height), interpolation=interp) if (width, height) != (w, h) else frame
        return np.ascontiguousarray(resized), Letterbox(sx, 0, 0, w, h, sy)
    scale = min(width / w, height / h)
    nw, nh = fitted_size(w, h, width, height)
    resized = resize_fast(frame, nw, nh)
    pad_x, pad_y = ((width - nw) // 2, (height - nh) // 2) if mode == "letterbox" else (0, 0)
    canvas = np.full((height, width, 3), pad_value, np.uint8)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    return canvas, Letterbox(scale, pad_x, pad_y, w, h)


def to_tensor_rgb01(canvas: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 [1,3,H,W] RGB in 0..1 (the ``rgb_0_1`` normalisation)."""
    h, w = canvas.shape[:2]
    out = np.empty((1, 3, h, w), np.float32)
    scale = np.float32(1.0 / 255.0)
    for plane, channel in enumerate((2, 1, 0)):  # one pass per plane into the NCHW buffer: ~2x faster than
        np.multiply(canvas[:, :, channel], scale, out=out[0, plane])  # astype + transpose + copy, same values
    return out


def letterbox_rgb01(frame: np.ndarray, size: int,
                    canvas: tuple[int, int] | None = None) -> tuple[np.ndarray, Letterbox]:
    """``to_tensor_rgb01(letterbox(frame, size))`` in one step (same values, the FieldLine hot path).

    ``canvas`` (width, height): the tensor's size when it is not the ``size`` square (a tight letterbox
    for dynamic-size models); the picture still fits the ``size`` square and is centred in the canvas.
    """
    h, w = frame.shape[:2]
    nw, nh = fitted_size(w, h, size, size)
    resized = resize_fast(frame, nw, nh)
    tensor, lb = planes_to_letterboxed_rgb01((resized[:, :, 2], resized[:, :, 1], resized[:, :, 0]), canvas or size)
    return tensor, Letterbox(min(size / w, size / h), lb.pad_x, lb.pad_y, w, h)


def planes_to_letterboxed_rgb01(planes: tuple[np.ndarray, np.ndarray, np.ndarray],
                                size: int | tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """R, G, B uint8 planes that already fit the input -> centred float32 [1,3,H,W] tensor in 0..1.

    ``size``: a square side, or (width, height). Each plane is written straight into the tensor and only
    the padding is filled with the pad value, so no uint8 canvas is built and copied, and the float
    conversion covers the picture alone.
    """
    width, height = (size, size) if isinstance(size, int) else size
    nh, nw = planes[0].shape
    if nw > width or nh > height:
        raise ValueError(f"planes of {nw}x{nh} do not fit a {width}x{height} input")
    px, py = (width - nw) // 2, (height - nh) // 2
    out = np.empty((1, 3, height, width), np.float32)
    k = np.float32(1.0 / 255.0)
    pad = np.float32(PAD_VALUE) * k  # rounded exactly like the picture's pixels
    out[0, :, :py, :] = pad
    out[0, :, py + nh:, :] = pad
    out[0, :, py:py + nh, :px] = pad
    out[0, :, py:py + nh, px + nw:] = pad
    for index, plane in enumerate(planes):
        np.multiply(plane, k, out=out[0, index, py:py + nh, px:px + nw])
    return out, Letterbox(1.0, px, py, nw, nh)


class PlanesCanvas:
    """The ``planes_to_letterboxed_rgb01`` tensor for one picture size, reused frame after frame.

    The padding is written once; each frame writes only the picture, so no 1.2 MB tensor (at 320) is
    allocated and padded per frame. One canvas per thread: a tensor is only valid until the next ``write``.
    """

    def __init__(self, width: int, height: int, size: int | tuple[int, int]) -> None:
        """A ``width`` x ``height`` picture centred in a ``size`` input (a square side or (width, height))."""
        blank = np.zeros((height, width), np.uint8)
        self.tensor, self.letterbox = planes_to_letterboxed_rgb01((blank, blank, blank), size)
        px, py = self.letterbox.pad_x, self.letterbox.pad_y
        self._views = [self.tensor[0, c, py:py + height, px:px + width] for c in range(3)]

    def write(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """The tensor holding these R, G, B uint8 planes (of this canvas's size) in 0..1.

        OpenCV's saturating u8 -> f32 scale writes straight into the tensor's views, in about half the time of
        numpy's casting ``multiply`` (same float values).
        """
        for view, plane in zip(self._views, planes, strict=True):
            if plane.shape != view.shape or plane.dtype != np.uint8:
                raise ValueError(f"plane {plane.dtype} {plane.shape[::-1]}: this canvas takes uint8 planes of "
                                 f"{view.shape[1]}x{view.shape[0]}")
            cv2.addWeighted(plane, _INV_255, plane, 0.0, 0.0, dst=view, dtype=cv2.CV_32F)
        return self.tensor


_INV_255 = 1.0 / 255.0


Normalization = Literal["rgb_0_1", "rgb_imagenet", "bgr_0_255", "bgr_imagenet"]
_IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], np.float32)


def to_tensor(canvas: np.ndarray, normalization: Normalization) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 [1,3,H,W] in the model's normalisation.

    ``rgb_0_1``: RGB / 255 (FieldLine, Ultralytics); ``rgb_imagenet``: (RGB / 255 - mean) / std;
    ``bgr_0_255``: raw BGR values (YOLOX since 0.2); ``bgr_imagenet``: the ImageNet mean/std in BGR
    channel order on 0..255 values (NanoDet-Plus, PicoDet).
    """
    if normalization == "rgb_0_1":
        return to_tensor_rgb01(canvas)
    if normalization == "bgr_0_255":
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
    if normalization == "rgb_imagenet":
        scaled = (canvas[:, :, ::-1].astype(np.float32) * (1.0 / 255.0) - _IMAGENET_MEAN_RGB) / _IMAGENET_STD_RGB
    elif normalization == "bgr_imagenet":
        scaled = (canvas.astype(np.float32) - _IMAGENET_MEAN_RGB[::-1] * 255.0) / (_IMAGENET_STD_RGB[::-1] * 255.0)
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    return np.ascontiguousarray(scaled.transpose(2, 0, 1)[None])
