"""Edge pipeline benchmark: a 720p H.264 greenhouse video through every stage of the agent, on one core.

    python bench/edge_pipeline.py [--frames 300] [--video FILE] [--model FILE] [--anchors DIR] [--cores 1]

1. Renders a synthetic greenhouse row (``models.synth.tomato``) wider than the frame and pans a 1280x720
   window across it (so the tracker has moving fruit), encodes it with FFmpeg/libx264 when the ``ffmpeg``
   program is installed; otherwise with OpenCV's own writer ('mp4v', MPEG-4 Part 2: the opencv-python
   wheels ship no H.264 encoder) and says so.
2. Pins the process to one core (``--cores``), onnxruntime to 1 intra-op thread, OpenCV to 1 thread.
3. Times, in the same run: a staged pass (decode, scale to the input size, pad+tensor, inference, decode of the
   outputs + NMS, camera health, tracking, rules) per frame; then ``--rounds`` interleaved rounds of decode
   alone, inference alone on one tensor, decode-then-inference frame by frame (nothing else, but the two
   evicting each other's caches as they do in the agent) and the whole agent loop end to end (``CameraLoop``
   on a ``video`` source, frame-rate cap lifted, events into the real SQLite spool, no broker), twice: with the
   camera's default frame groups for a file, and one frame at a time (``group_frames: 1``, a live camera).
4. Repeats the detector stages and the loop for the anchor exports (YOLO11n, YOLO26n end-to-end) when
   their folder exists: side-by-side numbers from the same machine state.

Prints a table, and as the last line one JSON object (``fps``, ``overhead_ratio``, ``stages_ms``, ``rss_mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from unittest import mock

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.agent import Agent  # noqa: E402
from edge_agent.camera_loop import CameraCounters, CameraLoop  # noqa: E402
from edge_agent.config import AgentConfig, CameraConfig, VideoSource  # noqa: E402
from edge_agent.detectors import build_detector, onnx_detector  # noqa: E402
from edge_agent.detectors.onnx_detector import OnnxDetector  # noqa: E402
from edge_agent.detectors.onnx_generic import OnnxGenericDetector  # noqa: E402
from edge_agent.detectors.preprocess import PlanesCanvas, letterbox_rgb01  # noqa: E402
from edge_agent.health import GRID_COLS, GRID_ROWS, CameraHealth  # noqa: E402
from edge_agent.rules import ZoneRef, build_rule  # noqa: E402
from edge_agent.sources.video import open_video  # noqa: E402
from edge_agent.tracking import Tracker  # noqa: E402
from models.synth.tomato import random_scene, render  # noqa: E402

DEFAULT_MODEL = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"
WIDTH, HEIGHT, PAN_PX = 1280, 720, 4
COCO_STYLE = [f"class_{i}" for i in range(80)]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- the video
def render_pan(frames: int, seed: int = 11) -> list[np.ndarray]:
    """A few renders (noise/exposure jitter) of one wide scene; the video pans across them."""
    wide = WIDTH + PAN_PX * frames
    scene = random_scene(np.random.default_rng(seed), wide, HEIGHT)
    return [render(scene, np.random.default_rng(seed + k)).image for k in range(3)]


def pan_frames(wides: list[np.ndarray], frames: int):
    for i in range(frames):
        x = i * PAN_PX
        yield np.ascontiguousarray(wides[i % len(wides)][:, x:x + WIDTH])


def write_video(path: Path, frames: int) -> str:
    """Encode the pan; returns a description of the codec used."""
    wides = render_pan(frames)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}",
               "-r", "30", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
               "-pix_fmt", "yuv420p", str(path)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        for image in pan_frames(wides, frames):
            proc.stdin.write(image.tobytes())
        proc.stdin.close()
        if proc.wait() == 0:
            return "H.264 (libx264 via ffmpeg, yuv420p, crf 23, GOP 60)"
        print("ffmpeg failed; falling back to OpenCV's writer", file=sys.stderr)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit("no video encoder available (no ffmpeg program, OpenCV cannot write mp4v)")
    for image in pan_frames(wides, frames):
        writer.write(image)
    writer.release()
    return "MPEG-4 Part 2 ('mp4v' via OpenCV): NOT H.264 - install ffmpeg (apt-get install ffmpeg) for H.264"


def probe_codec(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return f"{fourcc.to_bytes(4, 'little').decode('ascii', 'replace')}, {n} frames"


# ---------------------------------------------------------------- stage timing
CLOCK = time.process_time  # per-stage clock: this process's CPU time, immune to other loads on the core


class Stopwatch:
    """Accumulates the CPU time spent inside wrapped callables (for timing a detector's own stages)."""

    def __init__(self) -> None:
        self.ms = 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms += (CLOCK() - started) * 1000

        return timed

    def take(self) -> float:
        ms, self.ms = self.ms, 0.0
        return ms


class _TimedSession:
    def __init__(self, session, watch: Stopwatch) -> None:
        self._session, self.run = session, watch.wrap(session.run)
        self.run_with_iobinding = watch.wrap(session.run_with_iobinding)

    def __getattr__(self, name: str):
        return getattr(self._session, name)


class StagedDetector:
    """Times preprocessing and inference inside the detector's own ``detect`` (no re-implementation)."""

    def __init__(self, detector) -> None:
        self.detector, self.pre, self.infer = detector, Stopwatch(), Stopwatch()
        self._patches = []
        if isinstance(detector, OnnxGenericDetector):
            detector.preprocess = self.pre.wrap(detector.preprocess)
            detector.infer = self.infer.wrap(detector.infer)
        else:  # the native OnnxDetector calls the shared letterbox-to-tensor code and its session
            self._patches = [mock.patch.object(onnx_detector, "letterbox_rgb01", self.pre.wrap(letterbox_rgb01)),
                             mock.patch.object(PlanesCanvas, "write", self.pre.wrap(PlanesCanvas.write))]
            detector._session = _TimedSession(detector._session, self.infer)

    def __enter__(self) -> StagedDetector:
        for p in self._patches:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        for p in self._patches:
            p.stop()
        if isinstance(self.detector, OnnxGenericDetector):
            del self.detector.preprocess, self.detector.infer
        else:
            self.detector._session = self.detector._session._session

    def detect_frame(self, frame):
        started = CLOCK()
        det = self.detector.detect_frame(frame)
        total = (CLOCK() - started) * 1000
        pre, infer = self.pre.take(), self.infer.take()
        return det, {"preprocess": pre, "inference": infer, "postprocess": total - pre - infer}


def agent_config(model: dict, video: Path, data_dir: Path) -> AgentConfig:
    return AgentConfig.model_validate({
        "device": "bench-1", "site": "bench", "data_dir": str(data_dir), "mqtt": {"host": "127.0.0.1", "port": 9},
        "model": model,
        "cameras": [{"name": "cam-1", "source": {"type": "video", "path": str(video)}, "zone": {"id": "shed-01"},
                     "rule": {"type": "count", "mode": "unique"}, "fps": 120}],
    })


def decode_alone(video: Path) -> list[float]:
    source = open_video(VideoSource(type="video", path=str(video)))
    times = []
    while True:
        started = CLOCK()
        frame = source.read()
        if frame is None:
            break
        times.append((CLOCK() - started) * 1000)
    source.close()
    return times[1:]  # the first frame was decoded when the file was opened


def staged_pass(config: AgentConfig, detector, video: Path) -> dict[str, list[float]]:
    camera = config.cameras[0]
    source = open_video(camera.source)
    rule = build_rule(camera, detector.labels)
    tracker = Tracker(camera.tracker)
    health = CameraHealth(camera.name, ZoneRef(camera.zone.kind, camera.zone.id, camera.zone.row), camera.alerts)
    stages: dict[str, list[float]] = {k: [] for k in
                                      ("decode", "scale", "preprocess", "inference", "postprocess", "health",
                                       "tracking", "rules", "detections")}
    with StagedDetector(detector) as staged:
        while True:  # the steps of CameraLoop.run, timed one by one
            t0 = CLOCK()
            frame = source.read()
            t1 = CLOCK()
            if frame is None:
                break
            now = time.monotonic()
            fit = detector.input_fit(*frame.size)
            if fit:  # cached: detect_frame reuses it (the native detector reads planes)
                frame.scaled_planes(*fit) if isinstance(detector, OnnxDetector) else frame.scaled(*fit)
            t2 = CLOCK()
            det, parts = staged.detect_frame(frame)
            t3 = CLOCK()
            health.on_grid(frame.grid(GRID_COLS, GRID_ROWS), now)
            t4 = CLOCK()
            tracked = tracker.update(det)
            t5 = CLOCK()
            rule.process(det, tracked, frame.size, now)
            t6 = CLOCK()
            if frame.index > 0:  # frame 0 was decoded when the file was opened
                stages["decode"].append((t1 - t0) * 1000)
            stages["scale"].append((t2 - t1) * 1000)
            for k, v in parts.items():
                stages[k].append(v)
            stages["health"].append((t4 - t3) * 1000)
            stages["tracking"].append((t5 - t4) * 1000)
            stages["rules"].append((t6 - t5) * 1000)
            stages["detections"].append(len(det))
    source.close()
    return stages


def fixed_inference(detector) -> Callable[[], object]:
    """One inference on a fixed grey tensor, through the call the agent itself makes."""
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    if isinstance(detector, OnnxGenericDetector):
        tensor, _ = detector.preprocess(frame)
        return lambda: detector.infer(tensor)
    # the native detector: the input tensor and output array bound once (IOBinding)
    width, height = detector.input_fit(WIDTH, HEIGHT)
    bound = detector._bound((width, height))
    bound.canvas.write(tuple(np.full((height, width), 90, np.uint8) for _ in range(3)))
    return lambda: detector._session.run_with_iobinding(bound.binding)


def inference_alone(detector, repeats: int = 100) -> list[float]:
    run = fixed_inference(detector)
    for _ in range(5):
        run()
    times = []
    for _ in range(repeats):
        started = CLOCK()
        run()
        times.append((CLOCK() - started) * 1000)
    return times


def decode_then_infer(video: Path, detector) -> list[float]:
    """Decode a frame, then one inference on a fixed tensor, frame after frame: decode and inference with
    nothing else, but each running after the other as in the agent (their caches evict each other)."""
    run = fixed_inference(detector)
    source = open_video(VideoSource(type="video", path=str(video)))
    times = []
    while True:
        started = CLOCK()
        if source.read() is None:
            break
        run()
        times.append((CLOCK() - started) * 1000)
    source.close()
    return times[1:]


def agent_loop(config: AgentConfig, detector, group_frames: int | None = None) -> tuple[float, float, int, int]:
    """The agent's own camera loop on the video, the frame-rate cap lifted; ``group_frames`` 1 runs it one
    frame at a time as for a live camera (None: the camera default for a file).

    Returns (wall seconds, CPU seconds, frames, events)."""
    agent = Agent(config, detector)
    camera = config.cameras[0]
    update = {"fps": 1e9} | ({"group_frames": group_frames} if group_frames else {})
    camera = camera.model_copy(update=update)  # uncapped: measure throughput, not the cap
    counters = CameraCounters()
    loop = CameraLoop(camera, open_video(camera.source), lambda: agent.detector, agent._on_outcomes, counters)
    started, cpu_started = time.perf_counter(), CLOCK()
    loop.run(threading.Event())
    seconds, cpu = time.perf_counter() - started, CLOCK() - cpu_started
    events = agent.spool.depth()
    agent.spool.close()
    return seconds, cpu, counters.frames, events


def med(values: list[float]) -> float:
    return round(float(median(values)), 3) if values else 0.0


def mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 3) if values else 0.0


def run_model(name: str, model: dict, video: Path, work: Path, rounds: int = 1) -> dict:
    """Stage medians from one staged pass, then ``rounds`` interleaved rounds of (decode alone, inference
    alone, the agent loop end to end). The overhead ratio is taken per round, so a neighbour's load that
    comes and goes during the run moves numerator and denominator together; the median round is reported.
    """
    config = agent_config(model, video, work / name)
    detector = build_detector(config.model)
    detector.detect(np.zeros((HEIGHT, WIDTH, 3), np.uint8))  # warm-up
    stages = staged_pass(config, detector, video)
    per_round = []
    for k in range(rounds):
        decode_ms = mean(decode_alone(video))
        infer_ms = mean(inference_alone(detector))
        interleaved_ms = mean(decode_then_infer(video, detector))
        seconds, cpu, frames, events = agent_loop(config.model_copy(update={"data_dir": work / f"{name}-{k}"}),
                                                  detector)
        e2e_ms = cpu * 1000 / max(frames, 1)
        _, cpu_single, frames_single, _ = agent_loop(
            config.model_copy(update={"data_dir": work / f"{name}-{k}-single"}), detector, group_frames=1)
        single_ms = cpu_single * 1000 / max(frames_single, 1)
        per_round.append({"decode_alone": decode_ms, "inference_alone": infer_ms, "e2e_ms": round(e2e_ms, 3),
                          "e2e_wall_ms": round(seconds * 1000 / max(frames, 1), 3),
                          "ratio": round(e2e_ms / (decode_ms + infer_ms), 3), "frames": frames, "events": events,
                          "e2e_single_ms": round(single_ms, 3),
                          "ratio_single": round(single_ms / (decode_ms + infer_ms), 3),
                          "decode_then_infer": interleaved_ms,
                          "ratio_to_decode_then_infer": round(e2e_ms / interleaved_ms, 3)})
    middle = sorted(per_round, key=lambda r: r["ratio"])[len(per_round) // 2]
    row = {k: med(v) for k, v in stages.items() if k != "detections"}
    row.update(middle, detections_per_frame=round(float(np.mean(stages["detections"])), 1),
               fps=round(1000 / middle["e2e_ms"], 1), fps_wall=round(1000 / middle["e2e_wall_ms"], 1),
               rounds=per_round)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300, help="video length in frames (30 fps)")
    ap.add_argument("--video", type=Path, help="use this video instead of rendering one")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="FieldLine-native model")
    ap.add_argument("--anchors", type=Path, default=Path(os.environ.get("FIELDLINE_ANCHORS",
                                                                       REPO.parent / "shared" / "anchors")))
    ap.add_argument("--cores", type=int, default=1, help="pin the process to this many cores")
    ap.add_argument("--rounds", type=int, default=15,
                    help="interleaved rounds of decode alone / inference alone / end to end (median reported)")
    args = ap.parse_args()

    rss_start = rss_mb()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    cv2.setNumThreads(1)
    work = Path(tempfile.mkdtemp(prefix="fieldline-bench-"))
    try:
        if args.video:
            video, codec = args.video, "given file"
        else:
            video = work / "greenhouse-720p.mp4"
            started = time.perf_counter()
            codec = write_video(video, args.frames)
            print(f"rendered + encoded {args.frames} frames in {time.perf_counter() - started:.1f} s: {codec}")
        codec += f" [{probe_codec(video)}]"
        rss_ready = rss_mb()

        main_row = run_model("fieldline", {"path": str(args.model)}, video, work, max(1, args.rounds))
        rows = {f"{args.model.stem} (fieldline)": main_row}
        anchors = {}
        for file, kind in (("yolo11n-320.onnx", "yolov8"), ("yolo26n-e2e-320.onnx", "yolo_e2e")):
            path = args.anchors / file
            if path.is_file():
                anchors[file] = run_model(file.split(".")[0], {"type": kind, "path": str(path), "labels": COCO_STYLE},
                                          video, work)
                rows[f"{file} ({kind}, anchor)"] = anchors[file]
        rss_end = rss_mb()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    decode_ms, overhead = main_row["decode_alone"], main_row["ratio"]
    group_frames = CameraConfig.model_fields["group_frames"].default
    cols = ["decode", "scale", "preprocess", "inference", "postprocess", "health", "tracking", "rules", "e2e_ms", "fps",
            "fps_wall"]
    print(f"\nvideo: {codec}; 1280x720; {os.sched_getaffinity(0).__len__()} core(s), onnxruntime 1 thread, "
          f"OpenCV {cv2.getNumThreads()} thread")
    print("CPU ms of this process (the machine is shared: wall time moves with other loads, CPU time much less).")
    print("stages: medians of a staged pass; e2e: the agent's CameraLoop over the whole video, mean per frame;")
    print("decode: the agent's video source (PyAV: H.264 to YUV frames); scale: YUV to R, G, B planes at the")
    print("network's input size (OpenCV area halving of the 4:2:0 planes), the full-size BGR picture is never made; preprocess: pad + tensor.")
    print("decode alone (the video read through the agent's source) and inference alone (one tensor, 100 runs):")
    print("means, the same statistic as e2e (I-frames and GC pauses count on both sides).")
    print("fps = frames per CPU second on the pinned core (what a dedicated core gives); fps_wall = as measured")
    print(f"{'model':44s}" + "".join(f"{c:>12s}" for c in cols) + f"{'infer alone':>13s}{'dets/frame':>11s}")
    for name, row in rows.items():
        print(f"{name:44s}" + "".join(f"{row[c]:12.2f}" for c in cols) + f"{row['inference_alone']:13.2f}"
              f"{row['detections_per_frame']:11.1f}")
    print(f"\n{'round':>6s}{'decode alone':>14s}{'infer alone':>13s}{'e2e_ms':>9s}{'ratio':>8s}"
          f"{'1-frame e2e':>13s}{'ratio':>8s}{'decode->infer':>15s}{'ratio to it':>13s}")
    for k, r in enumerate(main_row["rounds"], 1):
        print(f"{k:6d}{r['decode_alone']:14.2f}{r['inference_alone']:13.2f}{r['e2e_ms']:9.2f}{r['ratio']:8.3f}"
              f"{r['e2e_single_ms']:13.2f}{r['ratio_single']:8.3f}"
              f"{r['decode_then_infer']:15.2f}{r['ratio_to_decode_then_infer']:13.3f}")
    interleaved_ratio = med([r["ratio_to_decode_then_infer"] for r in main_row["rounds"]])
    single_ratio = med([r["ratio_single"] for r in main_row["rounds"]])
    print(f"median round: overhead ratio (e2e / (decode alone + inference alone)) = {main_row['e2e_ms']:.2f} / "
          f"({decode_ms:.2f} + {main_row['inference_alone']:.2f}) = {overhead:.3f}  (target <= 1.25; the file's "
          f"frames run in groups of {group_frames}: decode all, detect all, then track and rules frame by frame)")
    print(f"one frame at a time (group_frames 1, how a live camera runs): median ratio {single_ratio:.3f}")
    print("decode->infer: each frame decoded then one inference on a fixed tensor, nothing else (the two evict each "
          f"other's caches as in the agent); median ratio of e2e to it: {interleaved_ratio:.3f}")
    print(f"end-to-end: {main_row['fps']:.1f} FPS per CPU-second, {main_row['fps_wall']:.1f} FPS wall-clock "
          f"(target >= 60 on one core); RSS {rss_start:.0f} MB at start, "
          f"{rss_ready:.0f} MB with the video ready, {rss_end:.0f} MB at the end")
    result = {
        "fps": main_row["fps"], "fps_wall": main_row["fps_wall"], "overhead_ratio": overhead,
        "e2e_ms": main_row["e2e_ms"], "e2e_wall_ms": main_row["e2e_wall_ms"], "clock": "process CPU time",
        "stages_ms": {"decode": decode_ms, **{k: main_row[k] for k in cols[1:8]},
                      "inference_alone": main_row["inference_alone"]},
        "rss_mb": {"start": round(rss_start, 1), "ready": round(rss_ready, 1), "end": round(rss_end, 1)},
        "overhead_ratio_rounds": [r["ratio"] for r in main_row["rounds"]], "group_frames": group_frames,
        "overhead_ratio_one_frame_at_a_time": single_ratio,
        "overhead_ratio_one_frame_at_a_time_rounds": [r["ratio_single"] for r in main_row["rounds"]],
        "ratio_to_decode_then_infer": interleaved_ratio,
        "ratio_to_decode_then_infer_rounds": [r["ratio_to_decode_then_infer"] for r in main_row["rounds"]],
        "frames": main_row["frames"], "events": main_row["events"], "video": codec, "cores": args.cores,
        "anchors": {k: {"fps": v["fps"], "fps_wall": v["fps_wall"], "e2e_ms": v["e2e_ms"], "inference_alone": v["inference_alone"],
                        "preprocess": v["preprocess"], "postprocess": v["postprocess"]} for k, v in anchors.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
