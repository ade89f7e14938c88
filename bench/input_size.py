"""Accuracy and latency of one trained checkpoint exported at several input sizes (the network is fully convolutional).

    .venv/bin/python bench/input_size.py --checkpoint RUN/best.pt [--sizes 320,384,448,512,576]
        [--data synth:tomato] [--count 200] [--seed 777] [--runs 50]

Exports the checkpoint at every size, evaluates each file on the same frames (synthetic: ``--count`` fresh
frames from ``--seed``, a seed the holdout never uses, so the choice is made on validation data) and times all of
them in one interleaved run at 1 thread. This is how the shipped tomato-ripeness input size was picked: small
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

from models.bench import bench_models  # noqa: E402
from models.evaluate import evaluate  # noqa: E402
from models.export import export  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a `fieldline model train` run")
    ap.add_argument("--sizes", default="320,384,448,512,576", help="comma-separated square inputs (multiples of 32)")
    ap.add_argument("--data", default="synth:tomato", help="synth:tomato | synth:surface")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=777, help="validation seed (keep the holdout's seed out of it)")
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    bad = [s for s in sizes if s % 32 or s < 64]
    if bad or not args.checkpoint.is_file():
        print(json.dumps({"error": f"bad sizes {bad}" if bad else f"{args.checkpoint}: checkpoint not found"}))
        return 2
    console = Console(width=None if sys.stdout.isatty() else 150)
    rows: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {s: export(args.checkpoint, Path(tmp) / f"at{s}.onnx", name="sweep", input_size=s) for s in sizes}
        for s, path in files.items():
            ev = evaluate(path, args.data, count=args.count, seed=args.seed, threads=2)
            rows[s] = {"map50": ev["map50"], "map50_agnostic": ev["map50_agnostic"], "map50_95": ev["map50_95"]}
            console.print(f"{s}: mAP50 {ev['map50']:.3f}")
        lat = bench_models(list(files.values()), (1,), runs=args.runs, warmup=5)
        for s, path in files.items():
            rows[s]["median_ms_1t"] = lat["models"][path.name]["latency"]["1"]["median_ms"]
    table = Table(title=f"{args.checkpoint} at several input sizes ({args.count} {args.data} frames, seed {args.seed})")
    for col in ("input", "mAP50", "mAP50 any class", "mAP50-95", "ms (1 thread)"):
        table.add_column(col, justify="right")
    for s, r in rows.items():
        table.add_row(str(s), f"{r['map50']:.3f}", f"{r['map50_agnostic']:.3f}", f"{r['map50_95']:.3f}",
                      f"{r['median_ms_1t']:.2f}")
    console.print(table)
    print(json.dumps({"checkpoint": str(args.checkpoint), "data": args.data, "count": args.count, "seed": args.seed,
                      "sizes": {str(s): r for s, r in rows.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
