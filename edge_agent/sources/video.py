"""Video files, RTSP/HTTP streams and USB cameras through FFmpeg (PyAV; OpenCV where PyAV is missing).

Files are read frame by frame in order. Live sources (streams, USB) run a grabber thread that keeps only
the newest frame, so a slow detector never builds a backlog, and that reopens the source with exponential
backoff when it drops.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from edge_agent.config import UsbSource, VideoSource
from edge_agent.sources.base import Frame, Source, SourceError, now_ms

log = logging.getLogger(__name__)
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
READ_WAIT_S = 1.0


class VideoFile(Source):
    """A finite video file; ``loop`` rewinds at the end."""

    backlog = True

    def __init__(self, config: VideoSource) -> None:
        self.config = config
        if not Path(config.path).is_file():
            raise SourceError(f"video source {config.path!r}: file not found")
        self._capture = cv2.VideoCapture(config.path)
        if not self._capture.isOpened():
            raise SourceError(f"video source {config.path!r}: OpenCV/FFmpeg cannot open it (not a video?)")
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise SourceError(f"video source {config.path!r}: opened but no frame could be decoded")
        self._pending: np.ndarray | None = first
        self._index = 0

    def read(self) -> Frame | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = self._next_image()
            if image is None:
                self.ended = True
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


class LiveCapture(Source):
    """A stream or USB camera with a newest-frame grabber thread and reconnect with backoff."""

    def __init__(self, target: str | int, name: str, reconnect_max_s: float,
                 size: tuple[int | None, int | None] = (None, None)) -> None:
        self._target, self.name, self._reconnect_max_s, self._size = target, name, reconnect_max_s, size
        self._lock = threading.Condition()
        self._newest: np.ndarray | None = None
        self._newest_ts = 0
        self._index = 0
        self._closed = threading.Event()
        self.reconnects = 0
        self.connected = False
        self._thread = threading.Thread(target=self._grab_loop, name=f"grab-{name}", daemon=True)
        self._thread.start()

    def _open(self) -> cv2.VideoCapture | None:
        capture = cv2.VideoCapture(self._target)
        if self._size[0]:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
        if self._size[1]:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _grab_loop(self) -> None:
        delay = 1.0
        while not self._closed.is_set():
            capture = self._open()
            if capture is None:
                log.warning("%s: cannot open; retrying in %.0f s", self.name, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, self._reconnect_max_s)
                continue
            if self.reconnects or self.connected:
                log.info("%s: reconnected", self.name)
            self.connected, delay = True, 1.0
            while not self._closed.is_set():
                ok, image = capture.read()
                if not ok or image is None:
                    break
                with self._lock:
                    self._newest, self._newest_ts = image, now_ms()
                    self._lock.notify_all()
            capture.release()
            if not self._closed.is_set():
                self.connected = False
                self.reconnects += 1
                log.warning("%s: stream lost; reconnecting", self.name)

    def read(self) -> Frame | None:
        with self._lock:
            if self._newest is None:
                self._lock.wait(READ_WAIT_S)
            if self._newest is None:
                return None
            image, ts, self._newest = self._newest, self._newest_ts, None
        frame = Frame(image, ts, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


def open_video(config: VideoSource | UsbSource) -> Source:
    if isinstance(config, UsbSource):
        return LiveCapture(config.index, f"usb camera {config.index}", config.reconnect_max_s,
                           (config.width, config.height))
    if config.path.startswith(STREAM_PREFIXES):
        try:  # frames kept in the decoder's YUV (no full-size BGR copy per frame; see pyav_live)
            from edge_agent.sources.pyav_live import PyAvLiveStream
        except ImportError:  # PyAV missing: OpenCV decodes to BGR instead
            return LiveCapture(config.path, f"stream {config.path}", config.reconnect_max_s)
        return PyAvLiveStream(config.path, f"stream {config.path}", config.reconnect_max_s)
    try:
        from edge_agent.sources.pyav_video import PyAvVideoFile
    except ImportError:  # PyAV missing (a platform without its wheels): OpenCV decodes to BGR instead
        return VideoFile(config)
    return PyAvVideoFile(config)
