"""Edge pipeline benchmark: a camera-like H.264 video through every stage of the agent, on one core.

    scripts/bench-setup.sh   # once: Debian's GStreamer RTSP server (the RTSP path) and Mosquitto
    .venv/bin/python bench/edge_pipeline.py [--codec h264|hevc] [--height 720|1080] [--frames 300]
        [--rounds 15] [--model FILE] [--anchors DIR | --no-anchors] [--rtsp-seconds 20] [--rtsp-ab N]
        [--record DIR]

1. Renders a synthetic greenhouse row (``models.data.synth.tomato``) wider than the frame and pans a window across
   it (moving fruit for the tracker), encoded in-process by PyAV's bundled libx264 (or libx265 with
   ``--codec hevc``): yuv420p, no B-frames, a key frame every 2 s, like an IP camera (``bench/pan_video.py``).
   No ffmpeg program is needed; a PyAV build without the encoder stops with a message saying so.
2. Starts a real Mosquitto broker on a free port (``tests/support/mosquitto.py``), then pins this process to
   one core (``--cores``), onnxruntime to 1 intra-op thread, OpenCV to 1 thread.
3. A staged pass times each step of the loop per frame (decode, scale, pad+tensor, inference, decode of the
   outputs + NMS, health, tracking, rules). Then ``--rounds`` rounds, each model in turn inside a round (the
   anchors get as many rounds as FieldLine's model): decode alone, inference alone (one tensor, 100 runs),
   decode-then-inference frame by frame, and the agent's ``CameraLoop`` end to end, its events spooled and
   published to the broker (timed until every PUBACK): the live path (``group_frames`` 1, one frame at a time,
   as a camera runs: the headline) and the file path (the camera default ``group_frames`` for a file).
4. The RTSP camera path (``bench/rtsp_camera.py``): GStreamer's RTSP server replays an H.264 720p 15 fps file,
   the whole ``Agent`` runs on the ``rtsp://`` URL; CPU per frame and latency from capture to a subscriber.
   Skipped with the reason when the server cannot run (``--rtsp-seconds 0`` skips it). ``--rtsp-ab N`` adds N
   sessions each of OpenCV's ``LiveCapture`` (the fallback stream source) and the PyAV source, alternating.

Clocks: per-frame figures are this process's CPU time (all its threads, MQTT included). On a shared machine
other loads move it less than wall time, but still visibly (caches and memory bandwidth are shared: compare
the rounds); wall-clock FPS is printed beside it and moves with them.
Prints a table, and as the LAST line one JSON object (keys: see ``HEADLINE_KEYS``); ``--record DIR`` also
writes it to DIR/<UTC time>-<codec>-<height>p.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import av
import cv2
import numpy as np
import onnxruntime

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.agent_runs import CLOCK, agent_config, agent_loop  # noqa: E402
from bench.pan_video import EncoderMissing, frame_size, probe, write_video  # noqa: E402
from bench.rtsp_camera import RtspUnavailable, measure_rtsp  # noqa: E402
from bench.stage_timing import StagedDetector  # noqa: E402
from edge_agent.config import AgentConfig, CameraConfig, VideoSource  # noqa: E402
from edge_agent.detectors import build_detector  # noqa: E402
from edge_agent.detectors.onnx_detector import OnnxDetector  # noqa: E402
from edge_agent.detectors.onnx_generic import OnnxGenericDetector  # noqa: E402
from edge_agent.health import GRID_COLS, GRID_ROWS, CameraHealth, check_stride  # noqa: E402
from edge_agent.rules import ZoneRef, build_rule  # noqa: E402
from edge_agent.sources.video import open_video  # noqa: E402
from edge_agent.tracking import Tracker  # noqa: E402
from models.paths import shared_path  # noqa: E402
from models.zoo_index import default_file  # noqa: E402
from tests.support.mosquitto import MosquittoBroker, free_port  # noqa: E402

COCO_STYLE = [f"class_{i}" for i in range(80)]
ANCHORS = (("yolo11n-320.onnx", "yolov8"), ("yolo26n-e2e-320.onnx", "yolo_e2e"))
HEADLINE_KEYS = ("fps", "fps_wall", "overhead_ratio", "overhead_ratio_rounds", "file_path", "stages_ms", "rtsp",
                 "anchors", "versions", "video", "model", "machine", "date", "config")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
            "av": av.__version__, "numpy": np.__version__}


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except OSError:
        return None
    return done.stdout.strip() or None


def machine() -> str:
    try:
        for line in os.popen("lscpu").read().splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- the parts, each alone
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


def fixed_inference(detector, width: int, height: int) -> Callable[[], object]:
    """One inference on a fixed grey tensor, through the call the agent itself makes."""
    if isinstance(detector, OnnxGenericDetector):
        tensor, _ = detector.preprocess(np.full((height, width, 3), 90, np.uint8))
        return lambda: detector.infer(tensor)
    fit = detector.input_fit(width, height)  # the native detector: tensor and output bound once (IOBinding)
    bound = detector._bound(fit)
    bound.canvas.write(tuple(np.full((fit[1], fit[0]), 90, np.uint8) for _ in range(3)))
    return lambda: detector._session.run_with_iobinding(bound.binding)


def inference_alone(detector, width: int, height: int, repeats: int = 100) -> list[float]:
    run = fixed_inference(detector, width, height)
    for _ in range(5):
        run()
    times = []
    for _ in range(repeats):
        started = CLOCK()
        run()
        times.append((CLOCK() - started) * 1000)
    return times


def decode_then_infer(video: Path, detector, width: int, height: int) -> list[float]:
    """Decode a frame, then one inference on a fixed tensor, frame after frame: the two parts and nothing
    else, each running after the other as in the agent (their caches evict each other)."""
    run = fixed_inference(detector, width, height)
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


def staged_pass(config: AgentConfig, detector, video: Path) -> dict[str, list[float]]:
    camera = config.cameras[0]
    source = open_video(camera.source)
    rule = build_rule(camera, detector.labels)
    tracker = Tracker(camera.tracker)
    health = CameraHealth(camera.name, ZoneRef(camera.zone.kind, camera.zone.id, camera.zone.row), camera.alerts,
                          check_stride(float("inf")))
    stages: dict[str, list[float]] = {k: [] for k in ("decode", "scale", "preprocess", "inference", "postprocess",
                                                      "health", "tracking", "rules", "detections")}
    with StagedDetector(detector) as staged:
        while True:  # the steps of CameraLoop.run, timed one by one
            t0 = CLOCK()
            frame = source.read()
            t1 = CLOCK()
            if frame is None:
                break
            now = time.monotonic()
            detector.prepare(frame)  # the small copy, cached on the frame (what the loop does on reading)
            t2 = CLOCK()
            det, parts = staged.detect_frame(frame)
            t3 = CLOCK()
            if health.due():  # as the loop does (agent_loop lifts the frame-rate cap: every MAX_STRIDE-th)
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


# ---------------------------------------------------------------- statistics
def mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 3) if values else 0.0


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes over the rounds."""
    arr = np.asarray(values, float)
    return {"median": round(float(np.median(arr)), 3), "p25": round(float(np.percentile(arr, 25)), 3),
            "p75": round(float(np.percentile(arr, 75)), 3), "min": round(float(arr.min()), 3),
            "max": round(float(arr.max()), 3)}


class Model:
    """One detector under test: its staged pass and its rounds."""

    def __init__(self, name: str, spec: dict, video: Path, work: Path, broker: tuple[str, int], size: tuple[int, int]):
        self.name, self.spec, self.video, self.work, self.broker, self.size = name, spec, video, work, broker, size
        self.config = agent_config(spec, str(video), work / name, broker)
        self.detector = build_detector(self.config.model)
        self.detector.detect(np.zeros((size[1], size[0], 3), np.uint8))  # warm-up
        self.stages = staged_pass(self.config, self.detector, video)
        self.rounds: list[dict] = []

    def run_round(self) -> None:
        k, (w, h) = len(self.rounds), self.size
        decode_ms = mean(decode_alone(self.video))
        infer_ms = mean(inference_alone(self.detector, w, h))
        alone = decode_ms + infer_ms
        interleaved_ms = mean(decode_then_infer(self.video, self.detector, w, h))
        live = agent_loop(self.config.model_copy(update={"data_dir": self.work / f"{self.name}-{k}-live"}),
                          self.detector, group_frames=1)
        file = agent_loop(self.config.model_copy(update={"data_dir": self.work / f"{self.name}-{k}-file"}),
                          self.detector)
        self.rounds.append({
            "decode_alone": decode_ms, "inference_alone": infer_ms, "decode_then_infer": interleaved_ms,
            "live_ms": round(live.cpu_ms, 3), "live_wall_ms": round(live.wall_ms, 3),
            "live_ratio": round(live.cpu_ms / alone, 3),
            "live_ratio_to_decode_then_infer": round(live.cpu_ms / interleaved_ms, 3),
            "file_ms": round(file.cpu_ms, 3), "file_wall_ms": round(file.wall_ms, 3),
            "file_ratio": round(file.cpu_ms / alone, 3),
            "frames": live.frames, "events": live.events, "published": live.published})

    def summary(self) -> dict:
        col = lambda key: [r[key] for r in self.rounds]  # noqa: E731
        stage_medians = {k: round(float(median(v)), 3) for k, v in self.stages.items() if k != "detections" and v}
        fps = [1000 / r["live_ms"] for r in self.rounds]
        fps_wall = [1000 / r["live_wall_ms"] for r in self.rounds]
        return {
            "fps": round(float(median(fps)), 1), "fps_wall": round(float(median(fps_wall)), 1),
            "overhead_ratio": spread(col("live_ratio"))["median"], "overhead_ratio_spread": spread(col("live_ratio")),
            "overhead_ratio_rounds": col("live_ratio"),
            "fps_spread": spread(fps), "fps_wall_spread": spread(fps_wall),
            "live_ms": spread(col("live_ms")), "live_wall_ms": spread(col("live_wall_ms")),
            "ratio_to_decode_then_infer": spread(col("live_ratio_to_decode_then_infer"))["median"],
            "file_path": {"group_frames": CameraConfig.model_fields["group_frames"].default,
                          "fps": round(float(median([1000 / r["file_ms"] for r in self.rounds])), 1),
                          "fps_wall": round(float(median([1000 / r["file_wall_ms"] for r in self.rounds])), 1),
                          "overhead_ratio": spread(col("file_ratio"))["median"],
                          "overhead_ratio_spread": spread(col("file_ratio")),
                          "overhead_ratio_rounds": col("file_ratio")},
            "decode_alone": spread(col("decode_alone")), "inference_alone": spread(col("inference_alone")),
            "decode_then_infer": spread(col("decode_then_infer")),
            "stages_ms": stage_medians,
            "detections_per_frame": round(float(np.mean(self.stages["detections"])), 1),
            "frames": self.rounds[-1]["frames"], "events": self.rounds[-1]["events"],
            "published": self.rounds[-1]["published"], "rounds": len(self.rounds),
        }


# ---------------------------------------------------------------- output
STAGES = ("decode", "scale", "preprocess", "inference", "postprocess", "health", "tracking", "rules")


def print_table(rows: dict[str, dict], header: str) -> None:
    print(header)
    print(f"{'model':40s}" + "".join(f"{c:>12s}" for c in STAGES) + f"{'infer alone':>12s}{'live ms':>9s}"
          f"{'fps':>7s}{'fps wall':>9s}{'ratio':>7s}{'file ratio':>11s}{'dets':>6s}")
    for name, s in rows.items():
        print(f"{name:40s}" + "".join(f"{s['stages_ms'].get(c, 0):12.2f}" for c in STAGES)
              + f"{s['inference_alone']['median']:12.2f}{s['live_ms']['median']:9.2f}{s['fps']:7.1f}"
              f"{s['fps_wall']:9.1f}{s['overhead_ratio']:7.3f}{s['file_path']['overhead_ratio']:11.3f}"
              f"{s['detections_per_frame']:6.1f}")


def print_rounds(name: str, rounds: list[dict]) -> None:
    print(f"\nrounds of {name}: CPU ms per frame (wall in brackets); ratio = e2e / (decode alone + inference alone)")
    print(f"{'round':>5s}{'decode':>8s}{'infer':>8s}{'dec->inf':>9s}{'live e2e':>16s}{'ratio':>7s}"
          f"{'file e2e':>16s}{'ratio':>7s}{'events':>7s}")
    for k, r in enumerate(rounds, 1):
        print(f"{k:5d}{r['decode_alone']:8.2f}{r['inference_alone']:8.2f}{r['decode_then_infer']:9.2f}"
              f"{r['live_ms']:8.2f} ({r['live_wall_ms']:5.2f}){r['live_ratio']:7.3f}"
              f"{r['file_ms']:8.2f} ({r['file_wall_ms']:5.2f}){r['file_ratio']:7.3f}{r['events']:7d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", choices=("h264", "hevc"), default="h264")
    ap.add_argument("--height", type=int, choices=(720, 1080), default=720)
    ap.add_argument("--frames", type=int, default=300, help="video length in frames (30 fps)")
    ap.add_argument("--video", type=Path, help="use this video instead of rendering one")
    ap.add_argument("--model", type=Path, default=default_file("tomato-ripeness"),
                    help="FieldLine-native model (default: the zoo's default tomato-ripeness file, at its own size)")
    ap.add_argument("--anchors", type=Path, default=Path(os.environ.get("FIELDLINE_ANCHORS", shared_path("anchors"))))
    ap.add_argument("--no-anchors", action="store_true", help="FieldLine's model only")
    ap.add_argument("--cores", type=int, default=1, help="pin the process to this many cores")
    ap.add_argument("--rounds", type=int, default=15, help="rounds per model (medians and spread reported)")
    ap.add_argument("--rtsp-seconds", type=float, default=20.0, help="RTSP path window (0: skip it)")
    ap.add_argument("--rtsp-ab", type=int, default=0, metavar="N",
                    help="also N sessions each of the agent's PyAV stream source and OpenCV's LiveCapture, "
                         "alternating on the same server (an A/B in one run)")
    ap.add_argument("--record", type=Path, help="also write the JSON result into this folder")
    args = ap.parse_args(argv)

    rss_start = rss_mb()
    work = Path(tempfile.mkdtemp(prefix="fieldline-bench-"))
    broker = MosquittoBroker()
    try:
        broker.start()  # before pinning: the broker is another machine in real life
        endpoint = (broker.host, broker.port)
        if args.cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
        cv2.setNumThreads(1)
        if args.video:
            video, codec = args.video, "given file"
        else:
            video = work / f"greenhouse-{args.height}p.mp4"
            started = time.perf_counter()
            try:
                codec = write_video(video, args.frames, args.height, args.codec)
            except EncoderMissing as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"rendered + encoded {args.frames} frames in {time.perf_counter() - started:.1f} s: {codec}")
        info = probe(video)
        size = (info["width"], info["height"])
        rss_ready = rss_mb()

        models = {f"{args.model.stem} (fieldline)": Model("fieldline", {"path": str(args.model)}, video, work,
                                                          endpoint, size)}
        for file, kind in ANCHORS if not args.no_anchors else ():
            if (args.anchors / file).is_file():
                models[f"{file} ({kind}, anchor)"] = Model(
                    file.split(".")[0], {"type": kind, "path": str(args.anchors / file), "labels": COCO_STYLE},
                    video, work, endpoint, size)
        for k in range(max(1, args.rounds)):
            for model in models.values():
                model.run_round()
            print(f"round {k + 1}/{args.rounds} done", file=sys.stderr)
        rows = {name: m.summary() for name, m in models.items()}
        main_name, main_model = next(iter(models.items()))
        main = rows[main_name]

        rtsp: dict = {"skipped": "--rtsp-seconds 0"}
        if args.rtsp_seconds > 0:
            try:
                rtsp = measure_rtsp(main_model.spec, main_model.detector, work, endpoint, free_port(),
                                    seconds=args.rtsp_seconds,
                                    sources=("pyav",) + ("opencv", "pyav") * args.rtsp_ab)
            except RtspUnavailable as exc:
                rtsp = {"skipped": str(exc)}
        rss_end = rss_mb()
    finally:
        broker.close()
        shutil.rmtree(work, ignore_errors=True)

    detector = main_model.detector
    canvas = detector.input_canvas(*size) if isinstance(detector, OnnxDetector) else None
    ver = versions()
    print(f"\nvideo: {codec}; {info['codec']} {size[0]}x{size[1]}, {info['frames']} frames; "
          f"{len(os.sched_getaffinity(0))} core(s), onnxruntime 1 thread, OpenCV {cv2.getNumThreads()} thread")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()) + f"; machine: {machine()}")
    print(f"model: {args.model.name} at input {getattr(detector, 'input_size', '?')} "
          f"(tensor {canvas[0]}x{canvas[1]})" if canvas else "")
    print("CPU ms of this process (all threads, MQTT included). On a shared machine other loads move CPU time less "
          "than wall time (fps wall), but visibly: read the spread over the rounds.")
    print("stages: medians of a staged pass. live: the agent's CameraLoop one frame at a time (group_frames 1, how "
          "a camera runs), events spooled and published to a real Mosquitto until every PUBACK; file: the camera "
          f"default for a file (group_frames {main['file_path']['group_frames']}). ratio: e2e / (decode alone + "
          "inference alone), per round; figures: medians over the rounds.\n")
    print_table(rows, f"{args.rounds} rounds per model, each model in turn inside a round")
    print_rounds(main_name, main_model.rounds)
    o, f = main["overhead_ratio_spread"], main["file_path"]["overhead_ratio_spread"]
    print(f"\nHEADLINE live path (one frame at a time, MQTT publish in the loop): {main['fps']:.1f} FPS per CPU-second "
          f"(rounds {main['fps_spread']['min']:.1f}-{main['fps_spread']['max']:.1f}), {main['fps_wall']:.1f} FPS "
          f"wall-clock; overhead ratio median {o['median']:.3f} (IQR {o['p25']:.3f}-{o['p75']:.3f}, "
          f"range {o['min']:.3f}-{o['max']:.3f}); targets <= 1.25 and >= 60 FPS on one core")
    print(f"file path (group_frames {main['file_path']['group_frames']}): {main['file_path']['fps']:.1f} FPS per "
          f"CPU-second, {main['file_path']['fps_wall']:.1f} wall; overhead ratio median {f['median']:.3f} "
          f"(IQR {f['p25']:.3f}-{f['p75']:.3f}, range {f['min']:.3f}-{f['max']:.3f})")
    if "skipped" in rtsp:
        print(f"RTSP path: skipped: {rtsp['skipped']}")
    else:
        lat = rtsp["latency_ms"]
        print(f"RTSP path ({rtsp['video']}, {rtsp['size']} {rtsp['stream_fps']} fps, the whole Agent on rtsp://, "
              f"source {rtsp['source']}): "
              f"{rtsp['frames']} frames in {rtsp['window_s']} s ({rtsp['frames_per_s']} fps), "
              f"{rtsp['cpu_ms_per_frame']:.2f} CPU ms per frame ({100 * rtsp['cpu_share_of_core']:.1f}% of a core); "
              f"capture -> subscriber latency over {rtsp['events_received']} events: p50 {lat.get('p50')} ms, "
              f"p95 {lat.get('p95')} ms, max {lat.get('max')} ms")
    for s in rtsp.get("sessions", []):
        print(f"  RTSP session, source {s['source']:16s}: {s['cpu_ms_per_frame']:.2f} CPU ms per frame, "
              f"{s['frames_per_s']} fps, latency p50 {s['latency_ms'].get('p50')} ms, "
              f"p95 {s['latency_ms'].get('p95')} ms")
    print(f"RSS {rss_start:.0f} MB at start, {rss_ready:.0f} MB with the video ready, {rss_end:.0f} MB at the end")

    result = {
        "fps": main["fps"], "fps_wall": main["fps_wall"], "overhead_ratio": main["overhead_ratio"],
        "overhead_ratio_spread": main["overhead_ratio_spread"], "overhead_ratio_rounds": main["overhead_ratio_rounds"],
        "fps_spread": main["fps_spread"], "fps_wall_spread": main["fps_wall_spread"], "path": "live (group_frames 1)",
        "e2e_ms": main["live_ms"], "e2e_wall_ms": main["live_wall_ms"],
        "ratio_to_decode_then_infer": main["ratio_to_decode_then_infer"], "file_path": main["file_path"],
        "decode_alone_ms": main["decode_alone"], "inference_alone_ms": main["inference_alone"],
        "stages_ms": main["stages_ms"], "clock": "process CPU time (fps_wall: wall clock)",
        "frames": main["frames"], "events": main["events"], "published": main["published"], "rtsp": rtsp,
        "anchors": {name: {k: s[k] for k in ("fps", "fps_wall", "overhead_ratio", "live_ms", "inference_alone",
                                             "stages_ms", "file_path")} for name, s in list(rows.items())[1:]},
        "versions": ver, "video": {"codec": args.codec, "encoding": codec, "width": size[0], "height": size[1],
                                   "frames": info["frames"], "fps": info["fps"]},
        "model": {"file": args.model.name, "input_size": getattr(detector, "input_size", None),
                  "tensor": list(canvas) if canvas else None},
        "rss_mb": {"start": round(rss_start, 1), "ready": round(rss_ready, 1), "end": round(rss_end, 1)},
        "machine": machine(), "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": {"codec": args.codec, "height": args.height, "frames": args.frames, "rounds": args.rounds,
                   "rtsp_ab": args.rtsp_ab, "commit": git_commit(),
                   "cores": args.cores, "anchors": not args.no_anchors, "rtsp_seconds": args.rtsp_seconds,
                   "broker": "mosquitto (Debian), 127.0.0.1"},
    }
    line = json.dumps(result)
    if args.record:
        args.record.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (args.record / f"{stamp}-{args.codec}-{args.height}p.json").write_text(json.dumps(result, indent=1) + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
