"""The demo's whole farm as real processes, run under the fault injector, then audited.

Mosquitto (persistent, the deploy config's queue limits) and the cloud API (``fieldline api serve``) run as
processes; the demo's sheds (``fieldline.demo``: four sheds per edge device) and its two inspection lines
(``fieldline.demo_lines``) run as one ``fieldline edge run`` process per device, each behind its own TCP
proxy (bench.soak_proxy), with its data folder on a small tmpfs. The demo's folder feeds (the line parts and
the flaky shed camera) run in this process. ``run_soak`` returns the figures ``bench/soak.py`` prints.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.soak_faults import KINDS, Fault, begin, forced_schedule, random_schedule
from bench.soak_procs import AgentProcess, rss_mb
from bench.soak_proxy import Mode
from fieldline.demo import DEMO_MODEL, demo_agent_configs, demo_feeds
from fieldline.demo_feeds import start_feeds
from fieldline.demo_lines import LINES, line_agent_config, zone_names
from tests.support.api_process import ApiProcess
from tests.support.mosquitto import MosquittoBroker

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DEPLOY_MOSQUITTO = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
QUEUE_KEYS = ("max_queued_messages", "max_queued_bytes", "max_inflight_messages")
TOKEN = "soak-token"


def deploy_queue_settings() -> str:
    """The production broker's queue limits (the default 1000-message cap would drop an API restart's backlog)."""
    lines = [line for line in DEPLOY_MOSQUITTO.read_text().splitlines() if line.startswith(QUEUE_KEYS)]
    return "\n".join(lines) + "\n"


@dataclass
class SoakPlan:
    minutes: float = 60.0
    sheds: int = 60
    seed: int = 43
    warmup_s: float = 120.0  # RSS "start" is taken here, and faults begin
    settle_s: float = 90.0  # no fault in the last this many seconds: every device must deliver again
    every_s: tuple[float, float] = (60.0, 180.0)
    forced: Sequence[str] | None = None  # these fault kinds in order instead of a random schedule
    forced_gap_s: float = 10.0
    forced_duration_scale: float = 1.0
    disk_mb: int = 48
    workdir: Path | None = None


class SoakFarm:
    """Broker, API and agents; implements the fault injector's ``Farm`` and supervises like systemd."""

    def __init__(self, plan: SoakPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.broker = MosquittoBroker(persistent=True, extra_config=deploy_queue_settings())
        (workdir / "api").mkdir(parents=True, exist_ok=True)
        self.api = ApiProcess(workdir / "api", self.broker, token=TOKEN, client_id="soak-api",
                              zone_names=zone_names())
        demo_dir = workdir / "demo"
        configs = demo_agent_configs(demo_dir, plan.sheds, self.broker.port, DEMO_MODEL)
        configs += [line_agent_config(demo_dir, self.broker.port, spec) for spec in LINES]
        self.agents: dict[str, AgentProcess] = {}
        for config in configs:
            self.agents[config.device] = AgentProcess(config, workdir / "agents" / config.device,
                                                      self.broker.port, plan.disk_mb)
        self.feeds = demo_feeds(demo_dir, plan.sheds)
        self.feed_stop = threading.Event()
        self.held: set[str] = set()  # "broker", "api" or a device: down on purpose, not to be restarted
        self.unplanned = {"broker": 0, "api": 0}

    # ------------------------------------------------------------------ Farm (for the fault injector)
    def kill_broker(self) -> None:
        self.held.add("broker")
        self.broker.kill()

    def start_broker(self) -> None:
        self.broker.start()
        self.held.discard("broker")

    def kill_api(self) -> None:
        self.held.add("api")
        self.api.kill()

    def start_api(self) -> None:
        self.api.start(timeout=600)
        self.held.discard("api")

    def kill_agent(self, device: str) -> None:
        self.held.add(device)
        self.agents[device].kill()

    def start_agent(self, device: str) -> None:
        self.agents[device].start()
        self.held.discard(device)

    def fill_disk(self, device: str) -> None:
        agent = self.agents[device]
        agent.disk.fill(agent.pid)

    def free_disk(self, device: str) -> None:
        agent = self.agents[device]
        agent.disk.free(agent.pid)

    def set_clock(self, device: str, offset_s: float) -> None:
        self.agents[device].set_clock_offset(offset_s)

    def set_link(self, device: str, mode: Mode) -> None:
        self.agents[device].proxy.set_mode(mode)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.broker.start()
        self.api.start(timeout=600)
        for feed in self.feeds:
            feed.prepare()
        start_feeds(self.feeds, self.feed_stop)
        for agent in self.agents.values():
            agent.start()
            time.sleep(0.3)

    def supervise(self) -> None:
        """Restart whatever died by itself (systemd's Restart=always for agents, API and broker)."""
        if "broker" not in self.held and not self.broker.running:
            self.unplanned["broker"] += 1
            self.broker.start()
        if "api" not in self.held and not self.api.alive:
            self.unplanned["api"] += 1
            self.api.start(timeout=600)
        for device, agent in self.agents.items():
            if device not in self.held:
                agent.restart_if_exited()

    def pids(self) -> dict[str, int | None]:
        api = self.api._process  # noqa: SLF001 - the test helper keeps its Popen private
        pids: dict[str, int | None] = {"bench": os.getpid(), "mosquitto": self.broker.pid,
                                       "api": api.pid if self.api.alive and api is not None else None}
        pids.update({device: agent.pid for device, agent in self.agents.items()})
        return pids

    def api_last_seqs(self) -> dict[str, int]:
        return {device: _last_seq(self.api.get(f"/devices/{agent.site}/{device}/audit"))
                if _has_events(self.api, agent) else 0 for device, agent in self.agents.items()}

    def close(self) -> None:
        self.feed_stop.set()
        for agent in self.agents.values():
            agent.close()
        self.api.stop()
        self.broker.close()


def _has_events(api: ApiProcess, agent: AgentProcess) -> bool:
    response = httpx.get(f"{api.url}/api/v1/devices/{agent.site}/{agent.device}/audit", timeout=30,
                         headers={"Authorization": f"Bearer {api.token}"})
    return response.status_code == 200


def _last_seq(audit: dict[str, Any]) -> int:
    installs = audit["installs"]
    return int(installs[-1]["last_seq"] or 0) if installs else 0


def _wait_ingested(api: ApiProcess, timeout: float = 120.0) -> None:
    """Until the API has nothing queued and its stored count holds still for two seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        ingest = api.health()["ingest"]
        now = (ingest["stored"], ingest["received"])
        if ingest["queue_depth"] == 0 and now == last:
            return
        last = now
        time.sleep(2.0)


def _audit_device(api: ApiProcess, agent: AgentProcess) -> dict[str, Any]:
    spool = agent.spool_figures()
    row: dict[str, Any] = {"device": agent.device, "produced": spool["last_seq"], "stored": 0, "gaps": 0,
                           "tail_lost": 0, "stored_twice": 0, "redelivered": 0, "installs": 0,
                           "pending": spool["pending_events"], "dropped_by_policy": spool["dropped"],
                           "starts": agent.starts, "unplanned_exits": agent.unplanned_exits,
                           # did a disk_full fault bite? (SQLite often reuses its WAL file's pages, so no write fails)
                           "disk_full_episodes": agent.log().count(" not spooled (")}
    if not _has_events(api, agent):
        row["tail_lost"] = max(0, spool["last_seq"] - spool["pending_events"])
        return row
    audit = api.get(f"/devices/{agent.site}/{agent.device}/audit")
    installs = audit["installs"]
    row["installs"] = len(installs)
    for install in installs:
        row["stored"] += install["events"]
        row["gaps"] += install["missing"]
        distinct = (install["last_seq"] or 0) - install["missing"]
        row["stored_twice"] += install["events"] - distinct
        row["redelivered"] += install["repeats"]
    row["stored_twice"] += audit["id_collisions"]
    row["tail_lost"] = max(0, spool["last_seq"] - _last_seq(audit) - spool["pending_events"])
    return row


def _alerts(api: ApiProcess) -> dict[str, Any]:
    """Alerts raised (by code), then the bench, as the operator, clears the ones still open."""
    alerts = api.get("/alerts", limit=1000)
    by_code: dict[str, int] = {}
    for alert in alerts:
        by_code[alert["code"]] = by_code.get(alert["code"], 0) + 1
    cleared = 0
    for alert in alerts:
        if alert["state"] in ("active", "acknowledged"):
            response = httpx.post(f"{api.url}/api/v1/alerts/{alert['id']}/clear", timeout=30,
                                  headers={"Authorization": f"Bearer {api.token}"})
            cleared += response.status_code == 200
    return {"raised": len(alerts), "by_code": by_code, "cleared": cleared,
            "open_after": api.get("/alerts/summary")["active"]}


def run_soak(plan: SoakPlan, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Run the farm for ``plan.minutes`` under faults; return the figures (see bench/soak.py)."""
    workdir = plan.workdir or Path(tempfile.mkdtemp(prefix="fieldline-soak-"))
    total_s = plan.minutes * 60
    farm = SoakFarm(plan, workdir)
    devices = list(farm.agents)
    if plan.forced:
        faults = forced_schedule(plan.seed, plan.forced, plan.warmup_s, plan.forced_gap_s, devices,
                                 plan.forced_duration_scale)
    else:
        faults = random_schedule(plan.seed, plan.warmup_s, total_s - plan.settle_s, devices, plan.every_s)
    started = time.monotonic()
    try:
        farm.start()
        progress(f"farm up in {time.monotonic() - started:.0f} s: {len(devices)} agent processes")
        started = time.monotonic()  # the schedule counts from here
        elapsed = lambda: time.monotonic() - started  # noqa: E731
        rss_start: dict[str, tuple[int | None, float | None]] = {}
        pending = list(faults)
        current: tuple[Fault, Callable[[], None]] | None = None
        settle_seqs: dict[str, int] | None = None
        # the last fault must be followed by a fault-free settle window; moved on if it ends late (slow restart)
        end_s = max(total_s, (faults[-1].at_s + faults[-1].duration_s + plan.settle_s) if faults else 0.0)
        while elapsed() < end_s:
            now = elapsed()
            if not rss_start and now >= plan.warmup_s:
                rss_start = {name: (pid, rss_mb(pid)) for name, pid in farm.pids().items()}
            if current is not None and now >= current[0].at_s + current[0].duration_s:
                fault, undo = current
                undo()
                fault.ended_s = round(elapsed(), 1)
                progress(f"{fault.ended_s:7.1f} s  end   {fault.label()}")
                current = None
                if not pending:  # the last fault is over: the settle window starts now
                    end_s = max(end_s, fault.ended_s + plan.settle_s)
                    settle_seqs = farm.api_last_seqs()
                    progress(f"{elapsed():7.1f} s  settle window until {end_s:.0f} s: every device must deliver")
                continue
            if current is None and pending and now >= pending[0].at_s:
                fault = pending.pop(0)
                fault.started_s = round(now, 1)
                current = (fault, begin(fault, farm))
                progress(f"{fault.started_s:7.1f} s  begin {fault.label()} for {fault.duration_s} s")
            if not faults and settle_seqs is None and now >= end_s - plan.settle_s:
                settle_seqs = farm.api_last_seqs()
            farm.supervise()
            time.sleep(0.5)
        rss_end = {name: (pid, rss_mb(pid)) for name, pid in farm.pids().items()}
        final_seqs = farm.api_last_seqs()
        for agent in farm.agents.values():
            agent.stop()
        farm.feed_stop.set()
        _wait_ingested(farm.api)
        rows = [_audit_device(farm.api, agent) for agent in farm.agents.values()]
        alerts = _alerts(farm.api)
        ingest = farm.api.health()["ingest"]
    finally:
        farm.close()
    stuck = sorted(d for d in devices if settle_seqs is not None and final_seqs[d] <= settle_seqs.get(d, 0))
    rss = []
    for name, (pid, start_mb) in (rss_start or rss_end).items():
        end_pid, end_mb = rss_end.get(name, (None, None))
        same = pid is not None and pid == end_pid
        rss.append({"process": name, "start_mb": _r(start_mb), "end_mb": _r(end_mb), "same_process": same,
                    "growth_mb": _r(end_mb - start_mb) if same and start_mb is not None and end_mb is not None
                    else None})
    growths = [r["growth_mb"] for r in rss if r["growth_mb"] is not None]
    lost = sum(max(0, r["gaps"] + r["tail_lost"] - r["dropped_by_policy"]) for r in rows)
    if plan.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "minutes": round(plan.minutes, 2), "faults": len([f for f in faults if f.started_s is not None]),
        "lost": lost, "duplicates": sum(r["stored_twice"] for r in rows),
        "dropped_by_policy": sum(r["dropped_by_policy"] for r in rows),
        "rss_growth_mb_max": max(growths) if growths else None, "stuck": len(stuck),
        "detail": {
            "seed": plan.seed, "sheds": plan.sheds, "agent_processes": len(devices), "stuck_devices": stuck,
            "faults": [{"at_s": f.started_s, "kind": f.kind, "target": f.target, "detail": f.detail,
                        "duration_s": f.duration_s} for f in faults if f.started_s is not None],
            "fault_kinds": {k: sum(f.kind == k for f in faults if f.started_s is not None) for k in KINDS},
            "devices": rows, "rss": rss, "alerts": alerts, "unplanned_restarts": farm.unplanned,
            "ingest": {k: ingest.get(k) for k in ("received", "stored", "duplicates", "dead_letters",
                                                   "store_errors")},
            "disk": farm.agents[devices[0]].disk.how,
        },
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
