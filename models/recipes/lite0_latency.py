"""Latency of EfficientNet-Lite0 detectors against YOLO26n-320 and the shipped tomato model, in one run (1 thread).

Latency does not depend on weight values, so the lite0 shapes are exported with random weights (the v1 neck/head
and the `fast` one); trained files can be added as PATH@SIZE. Each file runs at the given square size, interleaved
with the others (models/detect/bench.py), so a shared machine slows all alike: read the ratios.

    python models/recipes/lite0_latency.py [--sizes 576,448,320,224] [--runs 100] [FILE@SIZE ...]

Prints one row per model and size (median ms, speed-up of YOLO26n-320 over it); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.detect.arch import ARCHS, NetSpec  # noqa: E402
from models.detect.bench import bench_models  # noqa: E402
from models.paths import shared_path  # noqa: E402

ANCHOR = shared_path("anchors", "yolo26n-320.onnx")
SHAPES = {"lite0-v1neck": NetSpec(backbone="efficientnet-lite0"),
          "lite0-fastneck": NetSpec(**{**ARCHS["fast"].to_dict(), "backbone": "efficientnet-lite0"})}


def _exports(tmp: Path, sizes: list[int]) -> list[tuple[Path, int]]:
    """Random-weight ONNX files of :data:`SHAPES` (one per shape and size: bench names files by name)."""
    import torch

    from models.detect.export import export_net
    from models.detect.net import TomatoNet

    torch.manual_seed(0)
    out = []
    for name, spec in SHAPES.items():
        net = TomatoNet(3, spec=spec).eval()
        for size in sizes:
            out.append((export_net(net, tmp / f"{name}-{size}.onnx", ("green", "half_ripe", "ripe"), name, "0",
                                   input_size=size), size))
    return out


def _linked(tmp: Path, spec: str) -> tuple[Path, int]:
    """PATH@SIZE -> (a uniquely named link to PATH, SIZE)."""
    path, _, size = spec.rpartition("@")
    if not path or not size.isdigit():
        raise SystemExit(f"{spec}: give a trained file as PATH@SIZE")
    src = Path(path)
    if not src.is_file():
        raise SystemExit(f"{spec}: {src} not found")
    link = tmp / f"{src.stem}-{size}.onnx"
    link.symlink_to(src.resolve())
    return link, int(size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="trained files as PATH@SIZE")
    ap.add_argument("--sizes", default="576,448,320,224")
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    if not ANCHOR.is_file():
        raise SystemExit(f"{ANCHOR}: the YOLO26n-320 anchor is missing")
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        zoo = ROOT / "models" / "zoo" / "tomato-ripeness.onnx"
        runs = [(ANCHOR, 320), *_exports(tmp, sizes), *(_linked(tmp, f) for f in args.files)]
        for size in (576, 320):
            link = tmp / f"tomato-ripeness-zoo-{size}.onnx"
            link.symlink_to(zoo)
            runs.append((link, size))
        res = bench_models([p for p, _ in runs], threads=(1,), runs=args.runs,
                           input_hw=[None if p == ANCHOR else (s, s) for p, s in runs])
    anchor_ms = res["models"][ANCHOR.name]["latency"]["1"]["median_ms"]
    rows = {}
    for name, m in res["models"].items():
        ms = m["latency"]["1"]["median_ms"]
        rows[name] = {"median_ms": ms, "parameters": m["parameters"], "yolo26n_320_over_this": round(anchor_ms / ms, 2)}
        print(f"{name:36s} {ms:7.2f} ms  {m['parameters']:>9,}  x{anchor_ms / ms:.2f} vs YOLO26n-320")
    print(json.dumps({"anchor": ANCHOR.name, "threads": 1, "runs": res["runs"], "loadavg_1m": res["loadavg_1m"],
                      "models": rows}))


if __name__ == "__main__":
    main()
