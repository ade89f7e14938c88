"""Memory soak: the agent runs a camera for N minutes against Mosquitto; RSS is sampled along the way.

Prints a table of samples and, last, one JSON line with `rss_start_mb`, `rss_end_mb`, `growth_mb` and the
frames processed. Run: `.venv/bin/python bench/edge_soak.py --minutes 30 [--video FILE]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from edge_agent.agent import Agent  # noqa: E402
from edge_agent.config import AgentConfig  # noqa: E402
from edge_agent.detectors.factory import build_detector  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--video", type=Path, help="loop this video file (the PyAV path) instead of a synthetic camera")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fieldline-soak-"))
    source = ({"type": "video", "path": str(args.video), "loop": True} if args.video
              else {"type": "synthetic", "seed": 5, "time_scale": 3600})
    with MosquittoBroker() as broker:
        config = AgentConfig.model_validate({
            "device": "soak", "site": "farm", "data_dir": tmp, "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "model": {"path": MODEL},
            "cameras": [{"name": "cam-1", "source": source,
                         "zone": {"id": "shed-01"}, "fps": args.fps, "publish_interval_s": 5,
                         "snapshots": {"periodic_s": 60}}],
        })
        agent = Agent(config, build_detector(config.model))
        stop = threading.Event()
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        samples = []
        started = time.monotonic()
        warm = started + min(60.0, args.minutes * 6)  # after a minute: imports, arenas and caches are warm
        while time.monotonic() - started < args.minutes * 60:
            samples.append((round(time.monotonic() - started), round(rss_mb(), 1), agent.counters["cam-1"].frames,
                            agent.spool.depth()))
            stop.wait(args.sample_s)
        stop.set()
        runner.join(timeout=30)
    table = Table("t (s)", "RSS MB", "frames", "spool depth", title="edge agent memory soak")
    for row in samples:
        table.add_row(*map(str, row))
    Console().print(table)
    warm_rss = next((rss for t, rss, _, _ in samples if t >= warm - started), samples[0][1])
    print(json.dumps({"minutes": args.minutes, "rss_start_mb": samples[0][1], "rss_warm_mb": warm_rss,
                      "rss_end_mb": samples[-1][1], "growth_after_warmup_mb": round(samples[-1][1] - warm_rss, 1),
                      "frames": samples[-1][2]}))


if __name__ == "__main__":
    main()
