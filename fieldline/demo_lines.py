"""The factory half of ``fieldline demo``: two inspection lines, each an edge agent running a shipped model.

* ``line-1`` (steel strip): the steel-defect detector on one part per second; about 6 % of the parts carry a
  defect, and a drift (a worn roller scratching the strip) lifts that to 50 %, mostly scratches, for 100 s,
  20 s after the start and then every 30 minutes;
* ``line-2`` (tile press): the surface-anomaly model on one tile every three seconds; 6 % defective, and a
  drift of chipped edges (``fray``, 60 %) for 90 s, 2.5 minutes after the start and then every 30 minutes.

The parts are generated (models.data.synth.surface) and dropped into watched folders (see fieldline.demo_feeds);
the agents' inspection rules raise ``defect_rate_high`` during a drift and the QA dashboard's p-chart flags
the drift's subgroups (line-1 in the 1 h view, 2-minute subgroups: the first drift is flagged by 6 minutes after
the start in 84 % of simulated starts and by 10 minutes in 99 %, at the measured reject rates). Drifts are
kept rare because the centre line is estimated from the same data: each one lifts it, and the good subgroups
then sit below it (the run rules mark some of them too). The pass/reject threshold is the one calibrated into
each model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_agent.config import AgentConfig
from fieldline.demo_feeds import DefectMix, FolderFeed, PartMaker, Periodic
from models.zoo_index import default_file

SITE = "demo-factory"
POLL_S = 0.2  # how often a line camera looks for the next part picture


@dataclass(frozen=True)
class LineSpec:
    line: str  # zone id on the QA dashboard
    name: str  # display name (Settings.zone_names)
    device: str
    model: str  # model name in models/zoo
    model_type: Literal["fieldline", "anomaly"]
    part_period_s: float  # one part every this many seconds
    normal: DefectMix
    drift: DefectMix
    drift_when: Periodic
    seed: int
    defect_rate_window: int  # parts in the agent's sliding defect-rate window
    defect_rate_alert: float  # defect rate over that window that raises defect_rate_high

    def model_path(self) -> Path:
        return default_file(self.model)


LINES: tuple[LineSpec, ...] = (
    LineSpec(
        line="line-1", name="Steel strip line", device="line-edge-01", model="steel-defect", model_type="fieldline",
        part_period_s=1.0,
        normal=DefectMix(0.06, {"scratch": 3, "inclusion": 3, "pit": 2, "patch": 1, "crack": 1}),
        drift=DefectMix(0.5, {"scratch": 8, "inclusion": 1, "pit": 1}),
        drift_when=Periodic(first_s=20, length_s=100, every_s=1800), seed=44_001,
        defect_rate_window=40, defect_rate_alert=0.3,
    ),
    LineSpec(
        line="line-2", name="Tile press line", device="line-edge-02", model="surface-anomaly", model_type="anomaly",
        part_period_s=3.0,
        normal=DefectMix(0.06, {"fray": 3, "patch": 2, "pit": 2, "inclusion": 1}),
        drift=DefectMix(0.6, {"fray": 1}),
        drift_when=Periodic(first_s=150, length_s=90, every_s=1800), seed=44_002,
        defect_rate_window=30, defect_rate_alert=0.25,
    ),
)


def feed_folder(data_dir: Path, spec: LineSpec) -> Path:
    return data_dir / "cameras" / spec.line


def line_agent_config(data_dir: Path, mqtt_port: int, spec: LineSpec) -> AgentConfig:
    """One agent per line; its camera reads the part pictures the line's feed drops into a folder."""
    model: dict[str, object] = {"path": spec.model_path()}
    if spec.model_type == "anomaly":
        model["type"] = "anomaly"
    return AgentConfig.model_validate({
        "device": spec.device,
        "site": SITE,
        "data_dir": data_dir / "edge" / spec.device,
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "model": model,
        "cameras": [{
            "name": "cam-inspect",
            "source": {"type": "folder", "path": feed_folder(data_dir, spec), "watch": True, "poll_s": POLL_S},
            "zone": {"kind": "line", "id": spec.line},
            "fps": 3.0 / spec.part_period_s,  # above the part rate: a backlog never builds up
            "rule": {"type": "inspection", "defect_rate_window": spec.defect_rate_window,
                     "defect_rate_alert": spec.defect_rate_alert},
            "alerts": {"cooldown_s": 300},
        }],
        "stats_interval_s": 60,
    })


def line_feed(data_dir: Path, spec: LineSpec) -> FolderFeed:
    maker = PartMaker(spec.line, spec.normal, spec.drift, spec.drift_when, seed=spec.seed)
    return FolderFeed(spec.line, feed_folder(data_dir, spec), maker, spec.part_period_s)


def zone_names() -> dict[str, str]:
    return {spec.line: spec.name for spec in LINES}
