"""Network streams (RTSP, HTTP, UDP/TCP) decoded with PyAV: frames stay in the decoder's YUV, like files.

``LiveCapture`` (OpenCV) converts every decoded frame to a full-size BGR picture in its grabber thread, and
the detector then shrinks that picture again: at 720p that is most of the CPU a camera costs besides
decoding and inference. Here the grabber keeps the newest decoded ``av.VideoFrame`` as it is; the detector's
copy is made from its YUV planes at the network's size (``PlanesScaler``) and the full BGR picture only
when something needs it (a snapshot). Same contract as ``LiveCapture``: the newest frame only, ``read``
waits up to a second for one, and a dropped stream is reopened with exponential backoff.
"""

from __future__ import annotations

import logging
import os
import threading

import av
import av.error

from edge_agent.sources.base import Frame, Source, now_ms
from edge_agent.sources.pyav_video import PlanesScaler, _bgr

log = logging.getLogger(__name__)
READ_WAIT_S = 1.0
OPEN_TIMEOUT_S = 10.0  # connecting and reading the stream's headers
READ_TIMEOUT_S = 5.0  # no packet for this long: the stream is treated as dropped
MAX_CORRUPT_IN_A_ROW = 100  # undecodable packets in a row: reconnect rather than decode garbage


class PyAvLiveStream(Source):
    """A network stream with a newest-frame grabber thread and reconnect with backoff."""

    def __init__(self, url: str, name: str, reconnect_max_s: float, threads: int | None = None) -> None:
        self._url, self.name, self._reconnect_max_s = url, name, reconnect_max_s
        self._threads = threads if threads is not None else min(2, len(os.sched_getaffinity(0)))
        self._lock = threading.Condition()
        self._newest: av.VideoFrame | None = None
        self._newest_ts = 0
        self._index = 0
        self._planes = PlanesScaler()
        self._closed = threading.Event()
        self.reconnects = 0
        self.connected = False
        self._thread = threading.Thread(target=self._grab_loop, name=f"grab-{name}", daemon=True)
        self._thread.start()

    def _open(self) -> av.container.InputContainer | None:
        options = {"rtsp_transport": "tcp"} if self._url.startswith(("rtsp://", "rtsps://")) else {}
        try:
            container = av.open(self._url, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
        except (av.error.FFmpegError, OSError) as exc:
            log.debug("%s: open failed: %s", self.name, exc)
            return None
        if not container.streams.video:
            container.close()
            log.warning("%s: the stream has no video", self.name)
            return None
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self._threads
        stream.thread_type = "SLICE"  # frame threading would hold frames back: latency on a live stream
        return container

    def _grab_loop(self) -> None:
        delay = 1.0
        while not self._closed.is_set():
            container = self._open()
            if container is None:
                log.warning("%s: cannot open; retrying in %.0f s", self.name, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, self._reconnect_max_s)
                continue
            if self.reconnects or self.connected:
                log.info("%s: reconnected", self.name)
            self.connected, delay = True, 1.0
            try:
                self._decode_until_dropped(container)
            finally:
                container.close()
            if not self._closed.is_set():
                self.connected = False
                self.reconnects += 1
                log.warning("%s: stream lost; reconnecting", self.name)

    def _decode_until_dropped(self, container: av.container.InputContainer) -> None:
        corrupt = 0
        try:
            for packet in container.demux(container.streams.video[0]):
                if self._closed.is_set():
                    return
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    corrupt += 1
                    self.corrupt_frames += 1
                    log.debug("%s: undecodable packet skipped: %s", self.name, exc)
                    if corrupt >= MAX_CORRUPT_IN_A_ROW:
                        return
                    continue
                corrupt = 0
                if frames:
                    with self._lock:
                        self._newest, self._newest_ts = frames[-1], now_ms()
                        self._lock.notify_all()
        except (av.error.FFmpegError, OSError) as exc:  # the connection itself failed or timed out
            log.debug("%s: read failed: %s", self.name, exc)

    def read(self) -> Frame | None:
        with self._lock:
            if self._newest is None:
                self._lock.wait(READ_WAIT_S)
            if self._newest is None:
                return None
            video_frame, ts, self._newest = self._newest, self._newest_ts, None
        frame = Frame.deferred(video_frame.width, video_frame.height, lambda: _bgr(video_frame),
                               lambda w, h: _bgr(video_frame, w, h), ts, self._index,
                               lambda w, h: self._planes(video_frame, w, h))
        self._index += 1
        return frame

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=READ_TIMEOUT_S + 1)
