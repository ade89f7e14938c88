"""The ``Source`` interface: one verb, ``read()``, returning the next frame (or ``None`` when none is ready)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import cv2
import numpy as np

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # R, G, B uint8 planes of one picture


class SourceError(RuntimeError):
    """A source that cannot be opened at all (missing file, unreadable stream); names the source."""


class Frame:
    """One captured frame.

    ``image`` is the full-size BGR uint8 HxWx3 picture. Decoders that deliver another format (YUV from FFmpeg)
    make it on first use only (snapshots), and make the detector's smaller copy (``scaled`` or
    ``scaled_planes``) straight from their own format, which skips building and reading a full-size BGR frame
    on every frame.
    """

    __slots__ = ("_image", "_make_image", "_make_planes", "_make_scaled", "_planes", "_scaled", "height", "index",
                 "truth", "ts_ms", "width")

    def __init__(self, image: np.ndarray, ts_ms: int, index: int, truth: dict[str, int] | None = None) -> None:
        self._image: np.ndarray | None = image
        self.ts_ms = ts_ms  # capture time, UTC epoch ms
        self.index = index  # frame number from this source
        self.truth = truth  # ground-truth counts, synthetic sources only
        self.height, self.width = image.shape[:2]
        self._make_image: Callable[[], np.ndarray] | None = None
        self._make_scaled: Callable[[int, int], np.ndarray] | None = None
        self._make_planes: Callable[[int, int], Planes] | None = None
        self._scaled: dict[tuple[int, int], np.ndarray] = {}
        self._planes: dict[tuple[int, int], Planes] = {}

    @classmethod
    def deferred(cls, width: int, height: int, make_image: Callable[[], np.ndarray],
                 make_scaled: Callable[[int, int], np.ndarray], ts_ms: int, index: int,
                 make_planes: Callable[[int, int], Planes] | None = None) -> Frame:
        """A frame whose pictures are made on demand by the source (``make_scaled(w, h)``: BGR at w x h;
        ``make_planes(w, h)``: the R, G, B planes at w x h)."""
        frame = cls.__new__(cls)
        frame._image, frame._make_image, frame._make_scaled, frame._scaled = None, make_image, make_scaled, {}
        frame._make_planes, frame._planes = make_planes, {}
        frame.ts_ms, frame.index, frame.truth, frame.width, frame.height = ts_ms, index, None, width, height
        return frame

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            assert self._make_image is not None
            self._image, self._make_image = self._make_image(), None
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full picture."""
        return self.width, self.height

    def scaled(self, width: int, height: int) -> np.ndarray:
        """The picture at ``width`` x ``height`` (area-averaged when shrinking); kept, so the detector and the
        health check share one copy."""
        key = (width, height)
        out = self._scaled.get(key)
        if out is None:
            if (width, height) == self.size:
                out = self.image
            elif key in self._planes:
                red, green, blue = self._planes[key]
                out = cv2.merge((blue, green, red))
            elif self._image is None and self._make_scaled is not None:
                out = self._make_scaled(width, height)
            else:
                from edge_agent.detectors.preprocess import resize_fast  # a leaf module; imported late

                out = resize_fast(self.image, width, height)
            self._scaled[key] = out
        return out

    def scaled_planes(self, width: int, height: int) -> Planes:
        """The picture at ``width`` x ``height`` as three uint8 planes (R, G, B), kept like ``scaled``.

        Networks read planes (NCHW), so a source that can write planes (FFmpeg's ``gbrp``) saves
        unpicking every pixel of an interleaved BGR copy; otherwise they are views into ``scaled``.
        """
        key = (width, height)
        planes = self._planes.get(key)
        if planes is None:
            if key not in self._scaled and self._image is None and self._make_planes is not None:
                planes = self._make_planes(width, height)
            else:
                bgr = self.scaled(width, height)
                planes = (bgr[:, :, 2], bgr[:, :, 1], bgr[:, :, 0])
            self._planes[key] = planes
        return planes

    def grid(self, cols: int = 64, rows: int = 48) -> np.ndarray:
        """A ``rows`` x ``cols`` BGR grid of single pixels, evenly spaced over the smallest picture made so far.

        Enough for brightness and frozen-picture checks; sampled from the planes when only planes were made
        (no full-size or merged copy is built for it).
        """
        if self._planes and not self._scaled:
            red, green, blue = self._planes[min(self._planes, key=lambda wh: wh[0] * wh[1])]
            return cv2.merge([sample_grid(p, cols, rows) for p in (blue, green, red)])
        return np.ascontiguousarray(sample_grid(self.preview(), cols, rows))

    def preview(self) -> np.ndarray:
        """The smallest picture made so far (the full one if none): enough for brightness/frozen checks."""
        sizes = [*self._scaled, *self._planes]
        if not sizes:
            return self.image
        smallest = min(sizes, key=lambda wh: wh[0] * wh[1])
        return self.scaled(*smallest)


def sample_grid(image: np.ndarray, cols: int, rows: int) -> np.ndarray:
    """Every k-th pixel so that at most ``rows`` x ``cols`` remain (a view)."""
    h, w = image.shape[:2]
    return image[::max(1, h // rows), ::max(1, w // cols)][:rows, :cols]


def now_ms() -> int:
    return int(time.time() * 1000)


class Source(ABC):
    """A frame source.

    ``read()`` returns ``None`` when no frame is ready yet (a live stream that is reconnecting) or when a finite
    source is exhausted; ``ended`` tells the two apart. ``corrupt_frames`` counts frames skipped as undecodable.
    """

    corrupt_frames: int = 0
    ended: bool = False
    # True when every frame waits to be read (files, folders): reading a few ahead loses none and keeps
    # decoding, inference and tracking each in the CPU caches for several frames in a row. Live sources hand
    # out the newest frame only, one at a time.
    backlog: bool = False

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or ``None`` (see ``ended``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""
