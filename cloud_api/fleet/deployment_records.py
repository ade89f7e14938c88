"""Plain records of deployments (no I/O): the rollout, each of its devices, and its history.

Deployment states::

    running -> succeeded                      every device passed the gate
    running <-> paused                        no new device starts while paused; devices half-way go on
    running | paused -> aborted               no new device starts; devices half-way finish
    running -> rolling_back -> failed         a device failed its gate: the ones that loaded it roll back
    succeeded | aborted | failed -> rolling_back -> rolled_back   an operator rolled the rollout back

Device states::

    waiting -> queued (its stage came; it is offline, or the rollout is paused) -> installing (model or config
    command stored) -> verifying (it runs the new model or config; the gate holds for hold_s) -> healthy | failed
    failed | healthy | verifying -> rolling_back (rollback command) -> rolled_back | rollback_failed
    waiting | queued -> skipped (the rollout stopped before its turn)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL_STATES = ("succeeded", "failed", "aborted", "rolled_back")
ACTIVE_STATES = ("running", "paused", "rolling_back")
DEVICE_BUSY = ("installing", "verifying", "rolling_back")  # half-way: a command in flight or a gate running
DEVICE_DONE = ("healthy", "failed", "rolled_back", "rollback_failed", "skipped")


@dataclass(frozen=True)
class GatePolicy:
    """The health gate and the stages. Defaults: 1 canary, batches of 5, fps >= 80 %, p95 latency at most 100 %
    above before, counts within 50 %, each judged on at least 5 stats messages."""

    canary: int = 1
    batch_size: int = 5
    min_fps_pct: float = 80.0  # median frame rate at least this % of the device's own median before the update
    max_latency_pct: float = 100.0  # median p95 inference latency at most this % above the median before
    min_stats_samples: int = 5  # stats messages after the settle time needed before fps and latency are judged
    max_count_jump_pct: float = 50.0  # counting models: mean count within this % of the device's last hour
    hold_s: float = 600.0  # every check must hold this long after the model is loaded
    settle_s: float = 6.0  # fps and counts are read from this long after the load (the agent fps window: 5 s)
    command_timeout_s: float = 300.0  # no reply to the model command by then: the device fails its gate
    stats_grace_s: float = 30.0  # no stats or counts after the hold for this long: the gate fails

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, data: dict[str, Any]) -> GatePolicy:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DeploymentRecord:
    id: str
    kind: str  # model | config
    sha256: str  # the model file or config version rolled out
    target: dict[str, Any]  # {"devices": ["site/device", ...]} | {"site": ...} | {"tag": ...}
    policy: dict[str, Any]  # GatePolicy.to_dict()
    state: str
    stage: int  # 0: canary, 1..: batches
    stages: int
    reason: str | None
    api_url: str
    created_by: str
    created_ms: int
    updated_ms: int
    finished_ms: int | None = None
    after_rollback: str | None = None  # the state a rollback in progress ends in: failed (gate) or rolled_back

    @property
    def gate(self) -> GatePolicy:
        return GatePolicy.of(self.policy)


@dataclass(frozen=True)
class DeploymentDevice:
    deployment_id: str
    site: str
    device: str
    stage: int
    state: str
    command_id: str | None = None
    rollback_command_id: str | None = None
    before_sha256: str | None = None  # the model (config: the config hash) it ran when its turn came
    before_fps: float | None = None  # median fps over its last hour on that model and config
    baseline_count: float | None = None  # mean count total over its last hour (None: not a counting device)
    gate: dict[str, Any] = field(default_factory=dict)  # the latest gate checks (and "before": the baseline)
    reason: str | None = None
    started_ms: int | None = None
    loaded_ms: int | None = None
    updated_ms: int = 0

    @property
    def key(self) -> str:
        return f"{self.site}/{self.device}"


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    deployment_id: str
    ts_ms: int
    site: str | None
    device: str | None
    from_state: str | None
    to_state: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class StatsSample:
    """One stats message as the gate reads it."""

    ts_ms: int  # received
    fps: float
    p95_ms: float  # p95 inference latency over the agent's recent frames
