"""Sources on real files and a real HTTP MJPEG stream: order, corrupt frames, watch mode, reconnect."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from edge_agent.config import FolderSource, SyntheticSource, VideoSource
from edge_agent.sources import SourceError, open_source
from tests.support.live_api import free_port, wait_until


def image(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_folder_reads_in_order_and_skips_corrupt_files(tmp_path):
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), image(value))
    (tmp_path / "1b.png").write_bytes(b"broken")
    source = open_source(FolderSource(type="folder", path=tmp_path))
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame.image[0, 0, 0]))
    assert values == [10, 20, 30] and source.ended and source.corrupt_frames == 1


def test_folder_watch_picks_up_new_files_and_never_ends(tmp_path):
    source = open_source(FolderSource(type="folder", path=tmp_path, watch=True, poll_s=0.05))
    assert source.read() is None and not source.ended
    cv2.imwrite(str(tmp_path / "part-1.png"), image(77))
    frame = wait_until(source.read, timeout=5, what="new file")
    assert int(frame.image[0, 0, 0]) == 77
    assert source.read() is None and not source.ended  # each file is read once


def test_video_file_frames_and_errors(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for value in range(0, 250, 50):
        writer.write(image(value))
    writer.release()
    source = open_source(VideoSource(type="video", path=str(path)))
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert len(frames) == 5 and source.ended
    with pytest.raises(SourceError, match="missing.mp4.*not found"):
        open_source(VideoSource(type="video", path=str(tmp_path / "missing.mp4")))
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="bad.mp4"):
        open_source(VideoSource(type="video", path=str(tmp_path / "bad.mp4")))


def _textured_clip(path, frames: int = 12, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    """An MPEG-4 clip of a blurred noise texture panning right; returns the frames OpenCV decodes from it."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for i in range(frames):
        writer.write(np.roll(base, 4 * i, axis=1))
    writer.release()
    capture, decoded = cv2.VideoCapture(str(path)), []
    while (got := capture.read())[0]:
        decoded.append(got[1])
    return decoded


def test_pyav_file_frames_match_opencv_and_scale_without_the_full_picture(tmp_path):
    from edge_agent.detectors.preprocess import resize_fast
    from edge_agent.sources.pyav_video import PyAvVideoFile

    path = tmp_path / "clip.mp4"
    reference = _textured_clip(path)
    source = open_source(VideoSource(type="video", path=str(path)))
    assert isinstance(source, PyAvVideoFile)  # files go through PyAV when it is installed
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()  # deferred pictures stay valid after the file is closed
    assert source.ended and [f.index for f in frames] == list(range(len(reference)))
    first = frames[0]
    assert first.size == (640, 360)
    small = first.scaled(320, 180)  # FFmpeg scales from YUV; the full BGR picture is not made for it
    assert small.shape == (180, 320, 3) and first._image is None
    assert first.scaled(320, 180) is small and first.preview() is small
    assert np.abs(small.astype(int) - resize_fast(reference[0], 320, 180).astype(int)).mean() < 3
    for frame, ref in zip(frames, reference, strict=True):  # the same colour conversion as OpenCV's
        assert np.abs(frame.image.astype(int) - ref.astype(int)).mean() < 1


def test_pyav_planes_are_made_from_yuv_and_shared_with_the_bgr_copy(tmp_path):
    """The detector's R, G, B planes come from the YUV planes (OpenCV for 4:2:0 up to the full size, swscale's
    planar output otherwise), close to an area resize of the full picture; the BGR copy and the health preview
    are built from them, never from a full BGR frame."""
    from edge_agent.sources.pyav_video import PyAvVideoFile

    path = tmp_path / "clip.mp4"
    reference = _textured_clip(path, frames=3)
    source = PyAvVideoFile(VideoSource(type="video", path=str(path)))
    frame = source.read()
    source.close()
    red, green, blue = frame.scaled_planes(320, 180)
    assert frame._image is None and red.shape == green.shape == blue.shape == (180, 320)
    assert red.dtype == np.uint8 and frame.scaled_planes(320, 180)[0] is red
    area = cv2.resize(reference[0], (320, 180), interpolation=cv2.INTER_AREA).astype(int)
    for plane, channel in ((red, 2), (green, 1), (blue, 0)):
        assert np.abs(plane.astype(int) - area[:, :, channel]).mean() < 2.5
    grid = frame.grid(64, 48)  # the health check's pixels, sampled from the planes without merging them
    assert grid.shape == (48, 64, 3) and not frame._scaled
    bgr = frame.preview()
    assert frame._image is None and bgr.shape == (180, 320, 3)
    np.testing.assert_array_equal(bgr, np.dstack([blue, green, red]))
    np.testing.assert_array_equal(grid, bgr[::3, ::5][:48, :64])
    for size in ((480, 270), (319, 179)):  # more than half the frame (chroma enlarged), an odd size
        other = frame.scaled_planes(*size)
        other_area = cv2.resize(reference[0], size, interpolation=cv2.INTER_AREA).astype(int)
        assert other[0].shape == (size[1], size[0])
        assert np.abs(other[0].astype(int) - other_area[:, :, 2]).mean() < 2.5


def test_pyav_planes_of_a_frame_survive_the_scaling_of_later_frames(tmp_path):
    """One swscale context serves the whole file; every frame still gets its own output buffers."""
    from edge_agent.sources.pyav_video import PyAvVideoFile

    path = tmp_path / "clip.mp4"
    reference = _textured_clip(path, frames=6)
    source = PyAvVideoFile(VideoSource(type="video", path=str(path)))
    frames = [source.read() for _ in range(len(reference))]
    source.close()
    first = [p.copy() for p in frames[0].scaled_planes(320, 180)]
    later = [f.scaled_planes(320, 180) for f in frames[1:]]
    for kept, now in zip(first, frames[0].scaled_planes(320, 180), strict=True):
        np.testing.assert_array_equal(kept, now)
    assert np.abs(later[-1][1].astype(int) - first[1]).mean() > 1  # the clip moves: later planes differ


def test_planes_of_an_in_memory_frame_are_views_of_its_scaled_copy():
    from edge_agent.sources import Frame

    picture = np.random.default_rng(1).integers(0, 255, (360, 640, 3), np.uint8)
    frame = Frame(picture, 0, 0)
    red, green, blue = frame.scaled_planes(160, 90)
    small = frame.scaled(160, 90)
    np.testing.assert_array_equal(np.dstack([blue, green, red]), small)
    assert np.shares_memory(red, small)  # no second copy of the picture
    assert np.shares_memory(frame.scaled_planes(640, 360)[2], picture)  # full size: views of the picture


def test_pyav_file_loops_and_reports_bad_files(tmp_path):
    from edge_agent.sources.pyav_video import PyAvVideoFile

    path = tmp_path / "clip.mp4"
    count = len(_textured_clip(path, frames=5))
    source = PyAvVideoFile(VideoSource(type="video", path=str(path), loop=True))
    indices = [source.read().index for _ in range(3 * count)]
    assert indices == list(range(3 * count)) and not source.ended
    source.close()
    (tmp_path / "notes.mp4").write_text("not a video at all\n")
    with pytest.raises(SourceError, match="notes.mp4.*cannot open"):
        PyAvVideoFile(VideoSource(type="video", path=str(tmp_path / "notes.mp4")))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[:200])  # the header without the frames
    with pytest.raises(SourceError, match="truncated.mp4"):
        PyAvVideoFile(VideoSource(type="video", path=str(truncated)))


def test_pyav_file_skips_and_counts_damaged_frames_and_reads_on(tmp_path):
    """Two MJPEG frames overwritten with garbage: FFmpeg refuses them; the frames after them still arrive."""
    from edge_agent.sources.pyav_video import PyAvVideoFile

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(30):
        writer.write(np.full((120, 160, 3), 8 * i, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 3) if data[i:i + 3] == b"\xff\xd8\xff"]  # JPEG start markers
    assert len(starts) == 30
    for k in (10, 20):
        data[starts[k]:starts[k + 1] - 64] = b"\xff" * (starts[k + 1] - 64 - starts[k])
    path.write_bytes(bytes(data))
    source = PyAvVideoFile(VideoSource(type="video", path=str(path)))
    grey = []
    while (frame := source.read()) is not None:
        grey.append(int(frame.image[60, 80, 0]))
    assert source.ended and source.corrupt_frames == 2 and len(grey) == 28
    assert grey[-1] == pytest.approx(8 * 29, abs=3)  # the file was read to its end


def test_detect_frame_equals_detect_on_the_full_picture(tmp_path):
    """The detector on the source's scaled copy finds the same boxes, in full-frame pixels."""
    from models.data.synth.tomato import random_scene, render

    from edge_agent.detectors import OnnxDetector
    from edge_agent.sources import Frame

    det = OnnxDetector("models/zoo/tomato-ripeness.onnx", conf_threshold=0.3)
    rng = np.random.default_rng(5)
    picture = render(random_scene(rng, 1280, 720), rng).image
    frame = Frame(picture, 0, 0)
    w, h = det.input_size, det.input_size * 9 // 16
    assert det.input_fit(1280, 720) == (w, h)
    assert det.input_canvas(1280, 720) == (w, -(-h // 32) * 32)  # tight letterbox: only up to a multiple of 32
    direct, via_frame = det.detect(picture), det.detect_frame(frame)
    assert len(direct) >= 3 and len(via_frame) == len(direct)
    np.testing.assert_allclose(via_frame.xyxy, direct.xyxy, atol=0.5)
    np.testing.assert_array_equal(via_frame.class_id, direct.class_id)
    assert frame.preview().shape == (h, w, 3)  # the health check reads the detector's copy
    np.testing.assert_array_equal(frame.scaled_planes(w, h)[0], frame.scaled(w, h)[:, :, 2])


def test_one_detector_serves_several_camera_threads():
    """Cameras share the agent's detector; each thread has its own input tensor, so results never mix."""
    from models.data.synth.tomato import random_scene, render

    from edge_agent.detectors import OnnxDetector
    from edge_agent.sources import Frame

    det = OnnxDetector("models/zoo/tomato-ripeness.onnx", conf_threshold=0.3)
    pictures = []
    for seed in (6, 7):
        rng = np.random.default_rng(seed)
        pictures.append(render(random_scene(rng, 1280, 720), rng).image)
    expected = [det.detect_frame(Frame(p, 0, 0)).xyxy for p in pictures]
    assert not np.array_equal(expected[0], expected[1])
    mismatches: list[int] = []

    def camera(k: int) -> None:
        for _ in range(25):
            if not np.array_equal(det.detect_frame(Frame(pictures[k], 0, 0)).xyxy, expected[k]):
                mismatches.append(k)

    threads = [threading.Thread(target=camera, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []


class _MjpegStream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 200, np.uint8))
        try:
            for _ in range(int(self.server.frames_per_connection)):  # type: ignore[attr-defined]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg.tobytes() + b"\r\n")
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def test_http_stream_reconnects_after_the_server_drops_it():
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _MjpegStream)
    server.frames_per_connection = 15  # the "camera" hangs up after 15 frames, then accepts again
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = open_source(VideoSource(type="video", path=f"http://127.0.0.1:{port}/stream.mjpg", reconnect_max_s=1))
    try:
        got = 0
        deadline = time.monotonic() + 30
        while (got < 30 or source.reconnects < 1) and time.monotonic() < deadline:
            frame = source.read()
            if frame is not None:
                assert frame.image.shape == (120, 160, 3)
                got += 1
        assert got >= 30 and source.reconnects >= 1 and not source.ended
    finally:
        source.close()
        server.shutdown()


def test_synthetic_camera_ripens_with_simulated_time():
    source = open_source(SyntheticSource(type="synthetic", seed=3, ripening_per_hour=1.0, time_scale=3600 * 10))
    before = [f.ripeness for f in source.scene.fruits]
    time.sleep(0.05)
    source.read()
    after = [f.ripeness for f in source.scene.fruits]
    assert all(b <= a for a, b in zip(after, before)) and sum(after) > sum(before)


def _run_camera_loop(video, group_frames: int) -> tuple[list[str], list[tuple], list[tuple]]:
    """The agent's camera loop on ``video`` with the shipped INT8 tomato model; returns the detector's call
    order, what it found per frame and the events the rule published (unique fruits per sweep)."""
    from edge_agent.camera_loop import CameraCounters, CameraLoop
    from edge_agent.config import CameraConfig
    from edge_agent.detectors import OnnxDetector
    from edge_agent.rules import EventOut

    class Recording(OnnxDetector):
        def prepare(self, frame):
            calls.append(f"prepare {frame.index}")
            super().prepare(frame)

        def detect_frame(self, frame):
            calls.append(f"detect {frame.index}")
            found = super().detect_frame(frame)
            per_frame.append((frame.index, found.xyxy.round(2).tolist(), found.class_id.tolist()))
            return found

    calls: list[str] = []
    per_frame: list[tuple] = []
    events: list[tuple] = []
    detector = Recording("models/zoo/tomato-ripeness.int8.onnx", conf_threshold=0.3)
    camera = CameraConfig.model_validate({
        "name": "cam-1", "source": {"type": "video", "path": str(video)}, "zone": {"id": "shed-01"},
        "rule": {"type": "count", "mode": "unique"}, "fps": 120, "group_frames": group_frames})

    def sink(cam, frame, detections, outcomes) -> None:
        events.extend((frame.index, o.kind, sorted(o.counts.items())) for o in outcomes if isinstance(o, EventOut))

    loop = CameraLoop(camera, open_source(camera.source), lambda: detector, sink, CameraCounters())
    loop.run(threading.Event())
    assert loop.counters.frames == 16
    return calls, per_frame, events


def test_file_frames_run_in_groups_with_the_same_results(tmp_path):
    """A file's frames are read ahead in groups (each stage stays in the CPU caches for the next frame):
    every frame is prepared right after decoding, the group detected, then tracked in order, and what the
    rules publish is exactly what one frame at a time publishes."""
    from models.data.synth.tomato import random_scene, render

    rng = np.random.default_rng(21)
    wide = render(random_scene(rng, 640 + 8 * 16, 360), rng).image
    path = tmp_path / "pan.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for i in range(16):
        writer.write(np.ascontiguousarray(wide[:, 8 * i:8 * i + 640]))
    writer.release()

    one_calls, one_found, one_events = _run_camera_loop(path, 1)
    four_calls, four_found, four_events = _run_camera_loop(path, 4)
    assert one_calls[:4] == ["prepare 0", "detect 0", "prepare 1", "detect 1"]
    assert four_calls[:8] == [f"prepare {i}" for i in range(4)] + [f"detect {i}" for i in range(4)]
    assert len(four_calls) == 32
    assert four_found == one_found and sum(len(f[1]) for f in one_found) >= 16  # fruits found in every frame
    assert four_events == one_events and one_events  # unique counts published, identical
