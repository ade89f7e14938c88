"""Accuracy and latency of one trained detector run at several input sizes (the network is fully convolutional).

    .venv/bin/python bench/input_size.py --checkpoint RUN/best.pt [--sizes 320,384,448,512,576]
        [--data synth:tomato] [--count 200] [--seed 777] [--runs 50]
    .venv/bin/python bench/input_size.py --model models/zoo/tomato-ripeness.onnx   # a dynamic-size file

Exports the checkpoint at every size (or, for a dynamic-size ONNX file, copies it with each size in its
metadata), evaluates each file on the same frames (synthetic: ``--count`` fresh frames from ``--seed``, a seed the
holdout never uses, so the choice is made on validation data) and times all of them in one interleaved run at
1 thread, on the square input and on the tight letterbox of a ``--frame`` camera picture (what the edge agent
runs by default for dynamic-size files). This is how the shipped tomato-ripeness input size was picked: small
fruit need pixels, so a network trained at one scale can gain many mAP points at a larger input, at a
quadratic latency cost. Prints a table; the LAST line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from models.detect.bench import bench_models  # noqa: E402
from models.detect.evaluate import evaluate  # noqa: E402
from models.detect.export import export, set_metadata  # noqa: E402
from edge_agent.detectors import ModelLoadError, OnnxDetector  # noqa: E402


def _at_size(model: Path, size: int, out: Path) -> Path:
    """A copy of a dynamic-size FieldLine file whose metadata names ``size`` (what eval and bench read)."""
    import onnx

    proto = onnx.load(str(model))
    set_metadata(proto, {"fieldline.input_size": str(size)})
    onnx.save(proto, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="best.pt of a `fieldline model train` run")
    source.add_argument("--model", type=Path, help="a dynamic-size FieldLine ONNX file (`fieldline model export`)")
    ap.add_argument("--sizes", default="320,384,448,512,576", help="comma-separated square inputs (multiples of 32)")
    ap.add_argument("--data", default="synth:tomato", help="synth:tomato | synth:surface")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=777, help="validation seed (keep the holdout's seed out of it)")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--frame", default="640x480", help="camera picture WxH for the tight-letterbox latency")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    bad = [s for s in sizes if s % 32 or s < 64]
    given = args.checkpoint or args.model
    frame = args.frame.lower().split("x")
    if len(frame) != 2 or not all(v.isdigit() and int(v) > 0 for v in frame):
        print(json.dumps({"error": f"--frame {args.frame!r}: expected WIDTHxHEIGHT, e.g. 640x480"}))
        return 2
    frame_w, frame_h = int(frame[0]), int(frame[1])
    error = f"bad sizes {bad}" if bad else None if given.is_file() else f"{given}: file not found"
    identity: dict[str, str] = {"checkpoint": str(given)}
    if error is None and args.model:
        try:
            model = OnnxDetector(args.model)
            identity = {"model": str(given), "sha256": model.sha256}
            if not model.dynamic_size:
                error = f"{args.model}: fixed input size; give its --checkpoint or re-export it (dynamic by default)"
        except ModelLoadError as exc:
            error = str(exc)
    if error:
        print(json.dumps({"error": error}))
        return 2
    console = Console(width=None if sys.stdout.isatty() else 150)
    rows: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {s: _at_size(args.model, s, Path(tmp) / f"at{s}.onnx") if args.model else
                 export(args.checkpoint, Path(tmp) / f"at{s}.onnx", name="sweep", input_size=s) for s in sizes}
        for s, path in files.items():
            ev = evaluate(path, args.data, count=args.count, seed=args.seed, threads=2, letterbox="square")
            rows[s] = {"map50": ev["map50"], "map50_agnostic": ev["map50_agnostic"], "map50_95": ev["map50_95"]}
            console.print(f"{s}: mAP50 {ev['map50']:.3f}")
        tight = {s: OnnxDetector(path, input_size=s, letterbox="tight").input_canvas(frame_w, frame_h)
                 for s, path in files.items()}
        for s, (w, h) in tight.items():
            rows[s]["tight_input"] = [w, h]
        lat = bench_models([*files.values(), *files.values()], (1,), runs=args.runs, warmup=5,
                           input_hw=[*((s, s) for s in files), *((h, w) for w, h in tight.values())])
        timed = list(lat["models"].values())  # in the order given: the squares, then the tight letterboxes
        for k, s in enumerate(files):
            rows[s]["median_ms_1t"] = timed[k]["latency"]["1"]["median_ms"]
            rows[s]["median_ms_1t_tight"] = timed[len(files) + k]["latency"]["1"]["median_ms"]
    table = Table(title=f"{given} at several input sizes ({args.count} {args.data} frames, seed {args.seed})")
    columns = ("input", "mAP50", "mAP50 any class", "mAP50-95", "ms (1 thread)", f"tight {args.frame}", "ms tight")
    for col in columns:
        table.add_column(col, justify="right")
    for s, r in rows.items():
        table.add_row(str(s), f"{r['map50']:.3f}", f"{r['map50_agnostic']:.3f}", f"{r['map50_95']:.3f}",
                      f"{r['median_ms_1t']:.2f}", "x".join(map(str, r["tight_input"])),
                      f"{r['median_ms_1t_tight']:.2f}")
    console.print(table)
    print(json.dumps({**identity, "data": args.data, "count": args.count, "seed": args.seed, "frame": args.frame,
                      "runs": lat["runs"], "block": lat["block"],
                      "sizes": {str(s): r for s, r in rows.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
