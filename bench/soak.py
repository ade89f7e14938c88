"""Faulted soak of the demo's whole farm: Mosquitto, the API and one edge agent process per device (the
demo's 60 sheds, four to a device, and its two inspection lines), while a seeded injector strikes every
1-3 minutes: kill -9 of the broker, the API or an agent; an agent's disk full; its clock stepped ±10 min;
its link to the broker dropped or stalled (bench/soak_faults.py, soak_proxy.py, soak_procs.py).

At the end: the per-device seq audit from the API (lost, stored twice), events dropped on purpose by the
spool cap, RSS of every process after warm-up and at the end, alerts raised and cleared, stuck devices (no
event delivered in the fault-free settle window at the end). Prints tables and, last, one JSON line
``{minutes, faults, lost, duplicates, dropped_by_policy, rss_growth_mb_max, stuck}``.

Run (as root, for the tmpfs disks): `.venv/bin/python bench/soak.py --minutes 60 --record bench/records`
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.soak_farm import SoakPlan, run_soak  # noqa: E402
from bench.soak_faults import KINDS  # noqa: E402

HEADLINE = ("minutes", "faults", "lost", "duplicates", "dropped_by_policy", "rss_growth_mb_max", "stuck")


def print_tables(figures: dict, console: Console) -> None:
    detail = figures["detail"]
    faults = Table("at (s)", "fault", "target", "detail", "lasted (s)", title="faults injected")
    for f in detail["faults"]:
        faults.add_row(str(f["at_s"]), f["kind"], f["target"] or "", f["detail"], str(f["duration_s"]))
    console.print(faults)
    devices = Table("device", "produced", "stored", "lost (gaps)", "lost (tail)", "stored twice", "redelivered",
                    "dropped (cap)", "left in spool", "starts", "own exits",
                    title="per-device seq audit (API)")
    for r in detail["devices"]:
        devices.add_row(r["device"], *(str(r[k]) for k in ("produced", "stored", "gaps", "tail_lost", "stored_twice",
                                                           "redelivered", "dropped_by_policy", "pending",
                                                           "starts", "unplanned_exits")))
    console.print(devices)
    rss = Table("process", "RSS after warm-up (MB)", "RSS at end (MB)", "growth (MB)", title="memory")
    for r in detail["rss"]:
        rss.add_row(r["process"], str(r["start_mb"]), str(r["end_mb"]),
                    str(r["growth_mb"]) if r["same_process"] else "restarted")
    console.print(rss)
    summary = Table("figure", "value", title="soak")
    for key in HEADLINE:
        summary.add_row(key, str(figures[key]))
    alerts = detail["alerts"]
    summary.add_row("alerts raised / cleared by the bench", f"{alerts['raised']} / {alerts['cleared']} "
                    f"{alerts['by_code']}")
    summary.add_row("full-disk episodes that refused writes (agent logs)",
                    str(sum(r.get("disk_full_episodes", 0) for r in detail["devices"])))
    summary.add_row("stuck devices", ", ".join(detail["stuck_devices"]) or "none")
    summary.add_row("unplanned restarts (broker, API)", str(detail["unplanned_restarts"]))
    summary.add_row("API ingest", str(detail["ingest"]))
    summary.add_row("agent processes / disks", f"{detail['agent_processes']} / {detail['disk']}")
    console.print(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sheds", type=int, default=60)
    parser.add_argument("--seed", type=int, default=43)
    parser.add_argument("--warmup-s", type=float, default=120.0)
    parser.add_argument("--settle-s", type=float, default=90.0)
    parser.add_argument("--forced", help=f"comma-separated fault kinds in order ({', '.join(KINDS)})")
    parser.add_argument("--record", type=Path, help="also write the figures as JSON into this folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=150)
    plan = SoakPlan(minutes=args.minutes, sheds=args.sheds, seed=args.seed, warmup_s=args.warmup_s,
                    settle_s=args.settle_s, forced=args.forced.split(",") if args.forced else None)
    started = dt.datetime.now(dt.timezone.utc)
    figures = run_soak(plan, progress=lambda line: console.print(line, highlight=False))
    print_tables(figures, console)
    if args.record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        record = {"date": started.strftime("%Y-%m-%dT%H:%MZ"), "commit": commit,
                  "command": "bench/soak.py " + " ".join(sys.argv[1:]), **figures}
        args.record.mkdir(parents=True, exist_ok=True)
        path = args.record / f"{started.strftime('%Y%m%dT%H%MZ')}-soak.json"
        path.write_text(json.dumps(record, indent=1) + "\n")
        console.print(f"recorded in {path}")
    print(json.dumps({key: figures[key] for key in HEADLINE}))


if __name__ == "__main__":
    main()
