"""Video file or network stream through OpenCV/FFmpeg."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import VideoSource
from edge_agent.sources.base import Frame, Source, SourceError, now_ms

_STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


class VideoFile(Source):
    """Reads frames in order (FFmpeg itself skips undecodable packets); ``loop`` rewinds at the end."""

    def __init__(self, config: VideoSource) -> None:
        self.config = config
        is_stream = config.path.startswith(_STREAM_PREFIXES)
        if not is_stream and not Path(config.path).is_file():
            raise SourceError(f"video source {config.path!r}: file not found")
        self._capture = cv2.VideoCapture(config.path)
        if not self._capture.isOpened():
            raise SourceError(f"video source {config.path!r}: OpenCV/FFmpeg cannot open it (not a video?)")
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise SourceError(f"video source {config.path!r}: opened but no frame could be decoded")
        self._pending = first
        self._index = 0

    def read(self) -> Frame | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = self._next_image()
            if image is None:
                return None
        frame = Frame(image, now_ms(), self._index)
        self._index += 1
        return frame

    def _next_image(self) -> np.ndarray | None:
        ok, image = self._capture.read()
        if ok and image is not None:
            return image
        if not self.config.loop:
            return None
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._capture.read()
        return image if ok else None

    def close(self) -> None:
        self._capture.release()
