"""Cold start of the phone app to a drawn 60-shed overview, and frame times while scrolling the grid.

    .venv/bin/python bench/app_start.py [--runs 3] [--sheds 60]

Seeds a real cloud API (temp SQLite) with N sheds, then for each run spawns a fresh Python process
with an empty offline cache that starts the app against the API under Xvfb (started here if $DISPLAY
is not set). Cold start = wall time from spawning the process to the first frame flipped after all N
tiles are in the widget tree (interpreter start, Kivy import, window, kv, HTTP fetch, layout, draw).
Then the child scrolls the grid top -> bottom -> top and records the interval between frames.

Prints a table; the LAST line is one JSON object (cold_start_s = median over runs, frame figures in ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------------------------------------- child


def child(args: argparse.Namespace) -> None:
    marks = {"python_up": time.time()}
    from mobile_app.main import configure_kivy

    configure_kivy((360, 780))
    from kivy.clock import Clock
    from kivy.core.window import Window

    from mobile_app.cache import OfflineCache
    from mobile_app.controllers import Session
    from mobile_app.ui.app import FieldLineApp

    marks["kivy_imported"] = time.time()
    cache = OfflineCache(Path(args.data_dir) / "cache.db")
    app = FieldLineApp(Session(cache, api_url=args.api, token=args.token), live_updates=False)
    result: dict[str, object] = {"marks": marks}
    flips: list[float] = []
    phase = {"name": "start"}

    def on_flip(*_a: object) -> None:
        now = time.time()
        if phase["name"] == "wait_draw":
            result["drawn_wall"] = now
            phase["name"] = "drawn"
            Clock.schedule_once(start_scroll, 0.3)
        elif phase["name"] == "scroll":
            flips.append(time.perf_counter())

    def watch(_dt: float) -> None:
        if "window_up" not in marks and app.root is not None:
            marks["window_up"] = time.time()
        if phase["name"] == "start" and app.root and len(app.root.ids.overview.tiles) >= args.sheds:
            marks["tiles_in_tree"] = time.time()
            phase["name"] = "wait_draw"
            app.root.ids.overview.ids.grid.do_layout()
            Window.canvas.ask_update()

    steps = {"i": 0}
    frames_per_pass = 90

    def start_scroll(_dt: float) -> None:
        phase["name"] = "scroll"
        Clock.schedule_interval(scroll_step, 0)

    def scroll_step(_dt: float) -> bool:
        scroll = app.root.ids.overview.ids.scroll
        i = steps["i"]
        steps["i"] += 1
        total = 2 * frames_per_pass
        if i >= total:
            phase["name"] = "done"
            gaps = [(b - a) * 1000 for a, b in zip(flips, flips[1:])]
            result["frame_ms"] = gaps
            result["scroll_range_px"] = max(0.0, app.root.ids.overview.ids.grid.height - scroll.height)
            Path(args.out).write_text(json.dumps(result))
            app.stop()
            return False
        pos = i / frames_per_pass
        scroll.scroll_y = 1 - pos if pos <= 1 else pos - 1
        return True

    Window.bind(on_flip=on_flip)
    Clock.schedule_interval(watch, 0)
    app.run()
    cache.close()


# ---------------------------------------------------------------------------------------------- parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def parent(args: argparse.Namespace) -> None:
    from tests.mobile_app.api_server import RestartableApi
    from tests.mobile_app.seed import API_TOKEN, seed_site, settings_for
    from tests.mobile_app.xvfb import Xvfb

    work = Path(tempfile.mkdtemp(prefix="fieldline-bench-"))
    settings = settings_for(work / "api")
    seed_site(settings, n_sheds=args.sheds, history_sheds=0)
    runs: list[dict[str, float]] = []
    all_frames: list[float] = []
    with RestartableApi(settings) as api, Xvfb() as xvfb:
        env = dict(os.environ, DISPLAY=xvfb.display or "", KIVY_NO_ARGS="1", KIVY_LOG_MODE="PYTHON",
                   KIVY_HOME=str(work / "kivy"), PYTHONPATH=str(ROOT))
        # one untimed start so Kivy's config file and font caches exist, like an installed app
        for i in range(args.runs + 1):
            data_dir = work / f"app-{i}"
            out = work / f"run-{i}.json"
            start = time.time()
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--api", api.url,
                                   "--token", API_TOKEN, "--data-dir", str(data_dir), "--out", str(out),
                                   "--sheds", str(args.sheds)], env=env, capture_output=True, timeout=120)
            if proc.returncode != 0 or not out.exists():
                sys.stderr.write(proc.stderr.decode()[-3000:])
                raise SystemExit(f"child run {i} failed (exit {proc.returncode})")
            data = json.loads(out.read_text())
            if i == 0:
                continue
            frames = data["frame_ms"][1:]  # the first gap includes the scroll start
            all_frames += frames
            phases = {k: v - start for k, v in data["marks"].items()}
            runs.append({"cold_start_s": data["drawn_wall"] - start, "frames": len(frames), **phases,
                         "p50_ms": statistics.median(frames), "p95_ms": percentile(frames, 0.95),
                         "max_ms": max(frames)})
    print(f"FieldLine app cold start, {args.sheds} sheds, 360x780 window under Xvfb (llvmpipe), {os.cpu_count()} cores")
    print("seconds since spawn: python up | Kivy+app imported | window+kv built | 60 tiles in tree | drawn (= cold start)")
    print(f"{'run':>4} {'python':>7} {'imports':>8} {'window':>7} {'tiles':>6} {'drawn':>6} "
          f"{'frames':>7} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for n, r in enumerate(runs, 1):
        print(f"{n:>4} {r['python_up']:>7.3f} {r['kivy_imported']:>8.3f} {r['window_up']:>7.3f} {r['tiles_in_tree']:>6.3f} "
              f"{r['cold_start_s']:>6.3f} {r['frames']:>7} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} {r['max_ms']:>7.1f}")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    cold = statistics.median(r["cold_start_s"] for r in runs)
    summary = {
        "sheds": args.sheds, "runs": len(runs), "cold_start_s": round(cold, 3),
        "cold_start_min_s": round(min(r["cold_start_s"] for r in runs), 3),
        "cold_start_max_s": round(max(r["cold_start_s"] for r in runs), 3),
        "scroll_frames": len(all_frames), "frame_p50_ms": round(statistics.median(all_frames), 2),
        "frame_p95_ms": round(percentile(all_frames, 0.95), 2), "frame_max_ms": round(max(all_frames), 2),
        "frames_over_33ms": sum(1 for f in all_frames if f > 33.4), "target_cold_start_s": 1.5,
        "load_avg_1m": round(load, 2),
    }
    print(f"median cold start {cold:.3f} s (target < 1.5 s): {'OK' if cold < 1.5 else 'TOO SLOW'}")
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sheds", type=int, default=60)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.child else parent(args)


if __name__ == "__main__":
    main()
