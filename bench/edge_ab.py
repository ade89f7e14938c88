"""Interleaved A/B of the edge pipeline: two source trees (e.g. the previous commit and this one) on one video.

    git worktree add /tmp/fieldline-base HEAD~3    # or: git archive REV | tar -x -C DIR
    .venv/bin/python bench/edge_ab.py --base /tmp/fieldline-base [--height 720|1080] [--cycles 4] [--per-run 2]

On a shared machine the CPU time of a frame moves with the other loads by more than most changes are worth,
so figures from different runs cannot be compared. Here the two trees take turns (A B, B A, ...) within one
run: each turn is a fresh process of that tree pinned to one core (OpenCV and onnxruntime on 1 thread) that
measures ``--per-run`` rounds of decode alone, inference alone, and the agent's ``CameraLoop`` on the live path
(one frame at a time, events published to a real Mosquitto) and on the file path, exactly as
``bench/edge_pipeline.py`` does. Prints each turn, then per tree the medians and ranges of the overhead ratio
(e2e CPU / (decode alone + inference alone), same round) and, as the LAST line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]


def worker(tree: Path, video: Path, model: Path, rounds: int, core: int) -> None:
    """One turn, run with ``tree``'s own code: prints a JSON list of rounds."""
    sys.path.insert(0, str(tree))
    import cv2
    import numpy as np

    from bench.agent_runs import agent_config, agent_loop
    from bench.edge_pipeline import decode_alone, inference_alone, probe
    from edge_agent.detectors import build_detector
    from tests.support.mosquitto import MosquittoBroker

    info = probe(video)
    width, height = info["width"], info["height"]
    with MosquittoBroker() as broker:
        os.sched_setaffinity(0, [core])
        cv2.setNumThreads(1)
        work = Path(tempfile.mkdtemp(prefix="fieldline-ab-"))
        config = agent_config({"path": str(model)}, str(video), work / "agent", (broker.host, broker.port))
        detector = build_detector(config.model)
        detector.detect(np.zeros((height, width, 3), np.uint8))
        agent_loop(config.model_copy(update={"data_dir": work / "warm"}), detector, group_frames=1)
        out = []
        for k in range(rounds):
            decode = float(np.mean(decode_alone(video)))
            infer = float(np.mean(inference_alone(detector, width, height)))
            live = agent_loop(config.model_copy(update={"data_dir": work / f"live-{k}"}), detector, group_frames=1)
            file = agent_loop(config.model_copy(update={"data_dir": work / f"file-{k}"}), detector)
            out.append({"decode": decode, "infer": infer, "live_ms": live.cpu_ms, "live_wall_ms": live.wall_ms,
                        "file_ms": file.cpu_ms, "live_ratio": live.cpu_ms / (decode + infer),
                        "file_ratio": file.cpu_ms / (decode + infer), "events": live.events})
    print(json.dumps(out))


def summary(rounds: list[dict]) -> dict:
    def stats(key: str) -> dict[str, float]:
        values = [r[key] for r in rounds]
        return {"median": round(median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}

    return {key: stats(key) for key in ("live_ratio", "file_ratio", "live_ms", "live_wall_ms", "file_ms", "decode",
                                        "infer")} | {"rounds": len(rounds),
                                                     "events": sorted({r["events"] for r in rounds})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the other source tree (A); this tree is B")
    ap.add_argument("--height", type=int, choices=(720, 1080), default=720)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--video", type=Path, help="use this video instead of rendering one")
    ap.add_argument("--model", type=Path, help="model file (default: the zoo's default tomato-ripeness file)")
    ap.add_argument("--cycles", type=int, default=4, help="turns per tree")
    ap.add_argument("--per-run", type=int, default=2, help="rounds in each turn")
    ap.add_argument("--core", type=int, default=0, help="the core both trees are pinned to")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.video, args.model, args.per_run, args.core)
        return 0
    if not (args.base / "edge_agent").is_dir():
        print(f"error: --base {args.base}: not a FieldLine source tree (no edge_agent/ in it)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from bench.pan_video import write_video
    from models.zoo_index import default_file

    model = args.model or default_file("tomato-ripeness")
    work = Path(tempfile.mkdtemp(prefix="fieldline-ab-"))
    video = args.video or work / f"greenhouse-{args.height}p.mp4"
    if not args.video:
        print(f"video: {write_video(video, args.frames, args.height, 'h264')}, {args.height}p, {args.frames} frames")
    trees = {"A": args.base.resolve(), "B": REPO}
    rounds: dict[str, list[dict]] = {"A": [], "B": []}
    for cycle in range(args.cycles):
        for name in ("A", "B") if cycle % 2 == 0 else ("B", "A"):
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(trees[name]),
                                   "--video", str(video), "--model", str(model), "--per-run", str(args.per_run),
                                   "--core", str(args.core), "--base", str(args.base)],
                                  cwd=trees[name], capture_output=True, text=True)
            if done.returncode:
                print(f"error: turn of {name} ({trees[name]}) failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                return 1
            turn = json.loads(done.stdout.strip().splitlines()[-1])
            rounds[name] += turn
            print(f"cycle {cycle + 1} {name}: " + "  ".join(
                f"live {r['live_ms']:.2f} ms ratio {r['live_ratio']:.3f}, file ratio {r['file_ratio']:.3f}"
                for r in turn), flush=True)
    result = {name: summary(rs) | {"tree": str(trees[name])} for name, rs in rounds.items()}
    print("\nper tree: medians (range) over all rounds; ratio = e2e CPU / (decode alone + inference alone)")
    for name, s in result.items():
        print(f"{name} {s['tree']}: live ratio {s['live_ratio']['median']:.3f} ({s['live_ratio']['min']:.3f}-"
              f"{s['live_ratio']['max']:.3f}), file ratio {s['file_ratio']['median']:.3f} "
              f"({s['file_ratio']['min']:.3f}-{s['file_ratio']['max']:.3f}), live {s['live_ms']['median']:.2f} ms "
              f"CPU / {s['live_wall_ms']['median']:.2f} ms wall per frame, decode {s['decode']['median']:.2f}, "
              f"inference {s['infer']['median']:.2f}, events {s['events']}")
    result["config"] = {"height": args.height, "frames": args.frames, "cycles": args.cycles,
                        "per_run": args.per_run, "core": args.core, "model": Path(model).name}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
