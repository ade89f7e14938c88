"""Request and response models of the deployment and fleet-table routes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud_api.fleet.deployment_records import DeploymentDevice, DeploymentRecord, GatePolicy, HistoryEntry

TAG_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[str] | None = Field(default=None, min_length=1, max_length=1000,
                                      description="site/device keys")
    site: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, pattern=TAG_PATTERN, description="e.g. line:3 or greenhouse")

    @model_validator(mode="after")
    def _one(self) -> TargetIn:
        if sum(v is not None for v in (self.devices, self.site, self.tag)) != 1:
            raise ValueError("target needs exactly one of devices, site, tag")
        return self

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DeploymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["model", "config"] = Field(default="model", description="Roll out a model file or a config version")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$",
                        description="The model file in the registry, or the config version (GET /configs)")
    target: TargetIn
    canary: int = Field(default=1, ge=1, le=1000, description="Devices in the first stage")
    batch_size: int = Field(default=5, ge=1, le=1000, description="Devices per later stage")
    min_fps_pct: float = Field(default=80.0, ge=0, le=100,
                               description="Gate: median fps at least this % of the median over the last hour before")
    max_latency_pct: float = Field(default=100.0, ge=0, le=100_000,
                                   description="Gate: median p95 inference latency at most this % above before")
    min_stats_samples: int = Field(default=5, ge=1, le=1000,
                                   description="Gate: stats messages needed before fps and latency are judged")
    max_count_jump_pct: float = Field(default=50.0, ge=0, le=10000,
                                      description="Gate: mean count within this % of the device's last hour")
    hold_s: float = Field(default=600.0, ge=0, le=86400, description="Gate: every check holds this long")
    settle_s: float = Field(default=6.0, ge=0, le=3600,
                            description="fps and counts are read from this long after the load")
    command_timeout_s: float = Field(default=300.0, gt=0, le=86400)
    stats_grace_s: float = Field(default=30.0, ge=0, le=3600,
                                 description="No fps/count report this long after the hold: the gate fails")
    api_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://",
                                description="Base URL at which devices reach this API (default: this request's)")

    def policy(self) -> GatePolicy:
        return GatePolicy(canary=self.canary, batch_size=self.batch_size, min_fps_pct=self.min_fps_pct,
                          max_latency_pct=self.max_latency_pct, min_stats_samples=self.min_stats_samples,
                          max_count_jump_pct=self.max_count_jump_pct, hold_s=self.hold_s, settle_s=self.settle_s,
                          command_timeout_s=self.command_timeout_s, stats_grace_s=self.stats_grace_s)


class DeploymentDeviceOut(BaseModel):
    site: str
    device: str
    stage: int = Field(description="0: canary, 1..: batches")
    state: str = Field(description="waiting, queued, installing, verifying, healthy, failed, rolling_back, "
                                   "rolled_back, rollback_failed, skipped")
    command_id: str | None
    rollback_command_id: str | None
    before_sha256: str | None
    before_fps: float | None
    baseline_count: float | None
    gate: dict[str, Any] = Field(description="Latest gate checks: self_test, loaded, fps, latency, model_errors, "
                                             "counts; before: the baseline (median fps and p95 latency)")
    reason: str | None
    started_ms: int | None
    loaded_ms: int | None
    updated_ms: int

    @classmethod
    def of(cls, r: DeploymentDevice) -> DeploymentDeviceOut:
        data = asdict(r)
        data.pop("deployment_id")
        return cls(**data)


class HistoryOut(BaseModel):
    id: int
    ts_ms: int
    site: str | None
    device: str | None
    from_state: str | None
    to_state: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryOut:
        data = asdict(h)
        data.pop("deployment_id")
        return cls(**data)


class DeploymentOut(BaseModel):
    id: str
    kind: Literal["model", "config"]
    sha256: str
    target: dict[str, Any]
    policy: dict[str, Any]
    state: Literal["running", "paused", "rolling_back", "succeeded", "failed", "aborted", "rolled_back"]
    stage: int = Field(description="Current stage (0: canary); equal to stages once every stage started")
    stages: int
    reason: str | None = Field(description="Why it stopped (the failing gate) or who stopped it")
    created_by: str
    created_ms: int
    updated_ms: int
    finished_ms: int | None
    devices_by_state: dict[str, int]

    @classmethod
    def of(cls, d: DeploymentRecord, devices: list[DeploymentDevice]) -> DeploymentOut:
        by_state: dict[str, int] = {}
        for row in devices:
            by_state[row.state] = by_state.get(row.state, 0) + 1
        return cls(id=d.id, kind=d.kind, sha256=d.sha256, target=d.target, policy=d.policy,  # type: ignore[arg-type]
                   state=d.state, stage=d.stage, stages=d.stages, reason=d.reason,  # type: ignore[arg-type]
                   created_by=d.created_by, created_ms=d.created_ms, updated_ms=d.updated_ms,
                   finished_ms=d.finished_ms, devices_by_state=by_state)


class DeploymentDetailOut(DeploymentOut):
    devices: list[DeploymentDeviceOut]
    history: list[HistoryOut]


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(max_length=50, description="Replaces the device's tags, e.g. ['line:3', 'greenhouse']")

    @model_validator(mode="after")
    def _valid(self) -> TagsIn:
        import re

        bad = [t for t in self.tags if not re.fullmatch(TAG_PATTERN, t)]
        if bad:
            raise ValueError(f"bad tag(s) {bad}: letters, digits and _ . : - only, 1-64 characters")
        return self


class FleetDeviceOut(BaseModel):
    site: str
    device: str
    online: bool
    state: str
    model: str | None = Field(description="Model name")
    version: str | None
    sha256: str | None
    fps: float | None
    spool_depth: int | None
    latency_p50_ms: float | None
    last_seen_ms: int
    open_alerts: int
    tags: list[str]
    deployment: str | None = Field(description="State of the device in its latest deployment, if any")
