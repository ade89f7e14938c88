"""Zoo models against the anchor detectors, side by side in one run, at 1 and 2 intra-op threads.

    .venv/bin/python bench/models.py [--runs 100] [--threads 1,2] [--anchors DIR] [--side 320] [--block 25]

Times the onnxruntime session (random input of each model's shape) of every ``models/zoo/*.onnx`` and every
anchor ``*.onnx`` (``--anchors``, else ``$FIELDLINE_ANCHORS``, else ``../shared/anchors`` beside the repository; skipped with a
note when absent). Runs are interleaved across models, in blocks of ``--block`` runs of one model (after one
untimed run), so a noisy machine slows all alike while each model runs warm as on an edge box: read the ratios.
``--side 320`` runs the dynamic-size zoo files whose own input is larger at 320x320, the anchors' size (the
issue's point of comparison); by default every file runs at its own input size.
Then (``--detect-runs``, default ``--runs``; 0 skips) the detector's whole ``detect()`` per model on a 720p frame,
letterbox + inference + output decode + NMS, 1 thread, each model at its shipped input size, interleaved the
same way (``bench/detect_timing.py``): what a camera pays per frame, not the session alone.
Prints tables; the LAST line is one JSON object: the figures (``detect``: the whole-detect() times), and each
zoo model's speed-up at 1 thread against the fastest anchor (anchor median / model median; > 1 means the zoo
model is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bench.detect_timing import load_detectors, time_detect  # noqa: E402
from models.detect.bench import bench_models, bench_table, square_if_larger  # noqa: E402
from models.paths import shared_path  # noqa: E402

DEFAULT_ANCHORS = shared_path("anchors")


def speedups(result: dict, zoo: list[str], anchors: list[str], threads: int = 1) -> dict:
    """Fastest anchor at ``threads`` and each zoo model's speed-up against it."""
    if not anchors or str(threads) not in next(iter(result["models"].values()))["latency"]:
        return {"fastest_anchor": None, "speedup_vs_fastest_anchor": {}}
    key = str(threads)
    fastest = min(anchors, key=lambda a: result["models"][a]["latency"][key]["median_ms"])
    ref = result["models"][fastest]["latency"][key]["median_ms"]
    return {"fastest_anchor": fastest, "fastest_anchor_median_ms": ref, "speedup_threads": threads,
            "speedup_vs_fastest_anchor": {z: round(ref / result["models"][z]["latency"][key]["median_ms"], 2)
                                          for z in zoo}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    ap.add_argument("--anchors", type=Path, default=None)
    ap.add_argument("--zoo", type=Path, default=ROOT / "models" / "zoo")
    ap.add_argument("--side", type=int, default=0, help="run larger dynamic-size zoo files at this square size")
    ap.add_argument("--block", type=int, default=25, help="timed runs of one model in a row")
    ap.add_argument("--detect-runs", type=int, default=None,
                    help="runs of the whole detect() per model (default: --runs; 0: skip)")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    zoo = sorted(args.zoo.glob("*.onnx"))
    anchor_dir = args.anchors or Path(os.environ.get("FIELDLINE_ANCHORS", DEFAULT_ANCHORS))
    anchors = sorted(anchor_dir.glob("*.onnx")) if anchor_dir.is_dir() else []
    if not anchors:
        console.print(f"note: no anchor models in {anchor_dir} (set FIELDLINE_ANCHORS); timing the zoo alone")
    if not zoo:
        console.print(f"note: no .onnx files in {args.zoo}")
    files = zoo + anchors
    if not files:
        print(json.dumps({"error": "no models to bench"}))
        return 1
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    sizes = [square_if_larger(p, args.side) for p in zoo] + [None] * len(anchors)
    res = bench_models(files, threads, runs=args.runs, progress=lambda m: print(m, file=sys.stderr),
                       input_hw=sizes, block=args.block)
    for name, hw in zip(res["models"], sizes):
        res["models"][name]["input_hw"] = list(hw) if hw else None
    names = list(res["models"])
    zoo_names, anchor_names = names[:len(zoo)], names[len(zoo):]
    res["zoo"], res["anchors"] = zoo_names, anchor_names
    res.update(speedups(res, zoo_names, anchor_names, 1 if 1 in threads else threads[0]))
    extra = {n: {"role": "zoo" if n in zoo_names else "anchor",
                 "input": "x".join(map(str, res["models"][n]["input_hw"])) if res["models"][n]["input_hw"] else "own"}
             for n in names}
    for z, s in res["speedup_vs_fastest_anchor"].items():
        extra[z]["speed-up 1T"] = f"{s:.2f}x"
    console.print(bench_table(res, extra, title="zoo vs anchors"))
    if res["fastest_anchor"]:
        console.print(f"speed-up = {res['fastest_anchor']} median / model median at {res['speedup_threads']} thread "
                      f"(> 1: zoo model faster)")
    detect_runs = args.runs if args.detect_runs is None else args.detect_runs
    if detect_runs > 0:
        detectors, skipped = load_detectors(zoo, anchors)
        res["detect"] = time_detect(detectors, runs=detect_runs, block=args.block)
        res["detect_skipped"] = skipped
        console.print(detect_table(res["detect"], skipped))
    print(json.dumps(res))
    return 0


def detect_table(times: dict[str, dict], skipped: dict[str, str]):
    """A rich Table of the whole-detect() times."""
    from rich.table import Table

    table = Table(title="whole detect() on a 1280x720 BGR frame (letterbox, inference, decode, NMS), 1 thread, "
                        "interleaved; wall ms, CPU ms beside it")
    for col in ("model", "input", "median ms", "p90 ms", "CPU median ms"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, t in times.items():
        table.add_row(name, t["input"], f"{t['median_ms']:.2f}", f"{t['p90_ms']:.2f}", f"{t['cpu_median_ms']:.2f}")
    for name, why in skipped.items():
        table.add_row(name, "-", "skipped", "", why[:60])
    return table


if __name__ == "__main__":
    raise SystemExit(main())
