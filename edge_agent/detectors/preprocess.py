"""Letterbox resize shared by all ONNX decoders (and by calibration/training code)."""

from __future__ import annotations

from dataclasses import dataclass

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

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map boxes from network-input pixels back to original-frame pixels, clipped."""
        out = (np.asarray(xyxy, np.float32) - np.array([self.pad_x, self.pad_y] * 2, np.float32)) / self.scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.height)
        return out

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        return np.asarray(xyxy, np.float32) * self.scale + np.array([self.pad_x, self.pad_y] * 2, np.float32)


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio, centre on a ``size``x``size`` canvas padded with 114."""
    h, w = frame.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else frame
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    return canvas, Letterbox(scale, pad_x, pad_y, w, h)


def to_tensor_rgb01(canvas: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 [1,3,H,W] RGB in 0..1 (the ``rgb_0_1`` normalisation)."""
    rgb = canvas[:, :, ::-1].astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
