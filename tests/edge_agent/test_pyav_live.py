"""Network streams through PyAV (``PyAvLiveStream``): H.264 frames stay YUV, the newest frame only."""

from __future__ import annotations

import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np

from edge_agent.config import VideoSource
from edge_agent.sources import open_source
from edge_agent.sources.pyav_live import PyAvLiveStream
from tests.support.mosquitto import free_port


def write_ts(path: Path, frames: int = 45) -> None:
    """An H.264 MPEG-TS stream (what many cameras send over HTTP/UDP): a grey ramp that moves."""
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        ramp = np.tile(np.linspace(30, 220, 640).astype(np.uint8), (360, 1))
        for i in range(frames):
            image = np.dstack([np.roll(ramp, 4 * i, axis=1)] * 3)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def serve(folder: Path) -> tuple[ThreadingHTTPServer, int]:
    port = free_port()

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def test_h264_stream_gives_yuv_frames_scaled_without_the_full_picture(tmp_path: Path) -> None:
    write_ts(tmp_path / "cam.ts")
    server, port = serve(tmp_path)
    source = open_source(VideoSource(type="video", path=f"http://127.0.0.1:{port}/cam.ts", reconnect_max_s=1))
    try:
        assert isinstance(source, PyAvLiveStream)
        frames = []
        deadline = time.monotonic() + 20
        while len(frames) < 3 and time.monotonic() < deadline:
            frame = source.read()
            if frame is not None:
                frames.append(frame)
        assert len(frames) == 3 and [f.index for f in frames] == [0, 1, 2]
        frame = frames[-1]
        assert frame.size == (640, 360) and abs(frame.ts_ms - time.time() * 1000) < 30_000
        red, green, blue = frame.scaled_planes(320, 180)
        assert frame._image is None  # the detector's copy came from the YUV planes, no full BGR picture
        assert red.shape == (180, 320) and 20 < float(green.mean()) < 230
        assert np.abs(red.astype(int) - blue.astype(int)).mean() < 3  # grey stays grey (colour matrix right)
        assert frame.image.shape == (360, 640, 3)  # a snapshot still gets the full picture
    finally:
        source.close()
        server.shutdown()


def test_unreachable_stream_reads_none_and_close_returns() -> None:
    source = PyAvLiveStream(f"http://127.0.0.1:{free_port()}/none.ts", "dead camera", reconnect_max_s=1)
    started = time.monotonic()
    assert source.read() is None and not source.ended and not source.connected
    source.close()
    assert time.monotonic() - started < 10
