"""Long outage drill: an edge agent streams events while the broker is killed (-9) and restarted repeatedly.

Prints a table and, last, one JSON line: events produced, received, lost (seq gaps), duplicates, the deepest
spool, and how long each replay took. Run: `.venv/bin/python bench/chaos_outage.py --minutes 10`.
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
from edge_agent.detectors.onnx_detector import OnnxDetector  # noqa: E402
from tests.support.audit import AuditSubscriber  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--outage-s", type=float, default=60.0, help="length of each broker outage")
    parser.add_argument("--every-s", type=float, default=180.0, help="time between outages")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fieldline-chaos-"))
    broker = MosquittoBroker(persistent=True).start()
    audit = AuditSubscriber(broker.port, "chaos")
    config = AgentConfig.model_validate({
        "device": "chaos", "site": "farm", "data_dir": tmp / "edge",
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "reconnect_min_s": 1, "reconnect_max_s": 5},
        "model": {"path": MODEL},
        "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 9, "ripening_per_hour": 0},
                     "zone": {"id": "shed-01"}, "fps": 10, "publish_interval_s": 0.1, "smoothing_frames": 1}],
    })
    agent = Agent(config, OnnxDetector(MODEL))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    time.sleep(0.5)
    runner.start()
    outages, deepest = [], 0
    end = time.monotonic() + args.minutes * 60
    next_outage = time.monotonic() + min(args.every_s, args.minutes * 20)
    while time.monotonic() < end:
        deepest = max(deepest, agent.spool.depth())
        if time.monotonic() >= next_outage:
            broker.kill()
            down_until = time.monotonic() + args.outage_s
            while time.monotonic() < down_until:
                deepest = max(deepest, agent.spool.depth())
                time.sleep(0.5)
            spooled = agent.spool.depth()
            broker.start()
            started = time.monotonic()
            while agent.spool.depth() > 0 and time.monotonic() - started < 300:
                time.sleep(0.1)
            outages.append({"spooled": spooled, "replay_s": round(time.monotonic() - started, 2)})
            next_outage = time.monotonic() + args.every_s
        time.sleep(0.5)
    produced = agent.spool.last_seq
    stop.set()
    runner.join(timeout=30)
    deadline = time.monotonic() + 30
    while (not audit.seqs() or audit.seqs()[-1] < produced) and time.monotonic() < deadline:
        time.sleep(0.2)
    audit.close()
    broker.close()
    figures = {"minutes": args.minutes, "outages": len(outages), "produced": produced,
               "received": len(audit.seqs()), "lost": len(audit.missing()) + max(0, produced - audit.seqs()[-1]),
               "duplicates": audit.duplicates, "historical": len(audit.historical), "max_spool_depth": deepest,
               "replay_s": [o["replay_s"] for o in outages]}
    table = Table("figure", "value", title="edge outage drill")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
