"""Staged rollouts of a model or a config version: create one (canary, then batches), and the engine that
drives them.

``DeploymentService`` resolves a target (devices, a site or a tag) into devices, puts the online ones first,
splits them into a canary stage and batches, and stores the deployment. Operators pause, resume, abort and roll
back through it; every action is audited.

``DeploymentEngine`` is a background thread of the API. Each pass reads every unfinished deployment from the
database and moves its devices one step (see ``deployment_records`` for the states): a device whose stage came
and that is online gets a model command (a config rollout: a config command carrying the version as a merge
patch), stored in the same transaction as its move to ``installing``; the reply moves it to ``verifying``; the
health gate (``deployment_gate``) then passes or fails it. A failed gate stops the rollout and rolls back every
device that loaded the model or config (the agent's ``model`` or ``config`` command with ``rollback``: it
returns to its previous-model or previous-config slot). All state is in SQLite and every step is a compare-and-set transaction, so after a ``kill -9``
the next API process simply carries on: commands already stored are re-published by the command dispatcher
(the agent answers a repeated request id without running it again), and no device is started twice.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from cloud_api.fleet.commands import CommandService, CommandStore
from cloud_api.fleet.config_registry import ConfigRecord
from cloud_api.fleet.deployment_gate import Expected, GateStore, baseline_count, evaluate, running_sha, stats_baseline
from cloud_api.fleet.deployment_records import (
    ACTIVE_STATES,
    DEVICE_BUSY,
    FINAL_STATES,
    DeploymentDevice,
    DeploymentRecord,
    GatePolicy,
)
from cloud_api.fleet.loop import PeriodicLoop
from cloud_api.fleet.records import AuditRecord, CommandRecord, ModelRecord
from cloud_api.storage.records import DeviceRecord

log = logging.getLogger(__name__)
ROLLBACK_TIMEOUT_S = 86_400.0  # an offline device gets its rollback when it returns, within a day
DOWNLOAD_TRIES = 3  # model commands per device whose download failed (not its sha256 check or self-test)


class DeploymentError(ValueError):
    """A request the service refuses; the message says why."""


class DeploymentConflict(DeploymentError):
    """The deployment (or a device) is in a state that does not allow this."""


class DeploymentNotFound(LookupError):
    pass


class DeploymentStore(CommandStore, GateStore, Protocol):
    def get_device(self, site: str, device: str) -> DeviceRecord | None: ...

    def list_devices(self) -> list[DeviceRecord]: ...

    def devices_with_tag(self, tag: str) -> list[tuple[str, str]]: ...

    def add_deployment(self, deployment: DeploymentRecord, devices: list[DeploymentDevice],
                       audit: AuditRecord) -> None: ...

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None: ...

    def list_deployments(self, limit: int = 100) -> list[DeploymentRecord]: ...

    def deployments_to_drive(self, final_states: tuple[str, ...], busy_device_states: tuple[str, ...]
                             ) -> list[DeploymentRecord]: ...

    def deployment_devices(self, deployment_id: str) -> list[DeploymentDevice]: ...

    def update_deployment(self, deployment_id: str, now_ms: int, *, expect: tuple[str, ...] | None = None,
                          audit: AuditRecord | None = None, detail: dict[str, Any] | None = None,
                          **changes: Any) -> DeploymentRecord | None: ...

    def update_deployment_device(self, device: DeploymentDevice, now_ms: int, *,
                                 detail: dict[str, Any] | None = None,
                                 command: tuple[CommandRecord, AuditRecord] | None = None,
                                 audit: AuditRecord | None = None, **changes: Any) -> bool: ...

    def add_audit(self, entry: AuditRecord) -> int: ...

    def get_config(self, sha256: str) -> ConfigRecord | None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def audit_entry(actor: str, role: str, action: str, kind: str, target: str, result: str, /,
                **detail: Any) -> AuditRecord:
    return AuditRecord(id=0, ts_ms=now_ms(), actor=actor, role=role, action=action, target_kind=kind,
                       target=target, result=result, detail=detail)


class _CaptureCommand:
    """A CommandStore that keeps the command instead of storing it: the engine stores it together with the
    device's move (one transaction)."""

    def __init__(self, store: DeploymentStore) -> None:
        self._store = store
        self.captured: tuple[CommandRecord, AuditRecord] | None = None

    def add_command(self, command: CommandRecord, audit: AuditRecord) -> None:
        self.captured = (command, audit)

    def get_model(self, sha256: str) -> ModelRecord | None:
        return self._store.get_model(sha256)

    def fleet_key(self, name: str) -> bytes:
        return self._store.fleet_key(name)

    def __getattr__(self, name: str) -> Any:  # the rest of CommandStore is not used by CommandService.create
        return getattr(self._store, name)


def resolve_target(store: DeploymentStore, target: dict[str, Any]) -> list[DeviceRecord]:
    """The devices a target names: {"devices": ["site/device", ...]}, {"site": id} or {"tag": tag}."""
    if len(target) != 1:
        raise DeploymentError("target needs exactly one of devices, site, tag")
    if "devices" in target:
        found: list[DeviceRecord] = []
        for key in target["devices"]:
            site, _, name = str(key).partition("/")
            record = store.get_device(site, name)
            if record is None:
                raise DeploymentNotFound(f"no device {key!r} has reported to this API (use site/device)")
            found.append(record)
        return found
    if "site" in target:
        found = [d for d in store.list_devices() if d.site == target["site"]]
        what = f"site {target['site']!r}"
    else:
        keys = set(store.devices_with_tag(str(target["tag"])))
        found = [d for d in store.list_devices() if (d.site, d.device) in keys]
        what = f"tag {target['tag']!r}"
    if not found:
        raise DeploymentNotFound(f"no device with {what}")
    return found


class DeploymentService:
    def __init__(self, store: DeploymentStore, wake: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._wake = wake

    def create(self, *, sha256: str, target: dict[str, Any], policy: GatePolicy, actor: str, role: str,
               api_url: str, kind: str = "model") -> DeploymentRecord:
        sha256 = sha256.lower()
        if kind == "model":
            model = self._store.get_model(sha256)
            if model is None:
                raise DeploymentNotFound(f"no model with sha256 {sha256} in the registry (push it first)")
            what = f"{model.name} {model.version}"
        elif kind == "config":
            config = self._store.get_config(sha256)
            if config is None:
                raise DeploymentNotFound(f"no config version with sha256 {sha256} (upload it to /configs first)")
            what = f"config {config.name} version {config.version}"
        else:
            raise DeploymentError(f"unknown kind {kind!r} (model, config)")
        devices = resolve_target(self._store, target)
        busy = self._busy_devices()
        clash = sorted(f"{d.site}/{d.device}" for d in devices if (d.site, d.device) in busy)
        if clash:
            raise DeploymentConflict(f"already in a running deployment: {', '.join(clash[:5])}"
                                     f"{' ...' if len(clash) > 5 else ''} (finish, abort or roll it back first)")
        if policy.canary < 1 or policy.batch_size < 1:
            raise DeploymentError("canary and batch_size must be at least 1")
        ordered = sorted(devices, key=lambda d: (d.state != "online", d.site, d.device))  # canaries online
        canary = min(policy.canary, len(ordered))
        rest = len(ordered) - canary
        stages = 1 + math.ceil(rest / policy.batch_size)
        created = now_ms()
        deployment = DeploymentRecord(
            id=uuid.uuid4().hex, kind=kind, sha256=sha256, target=target, policy=policy.to_dict(),
            state="running", stage=0, stages=stages, reason=None, api_url=api_url, created_by=actor,
            created_ms=created, updated_ms=created)
        rows = [DeploymentDevice(deployment_id=deployment.id, site=d.site, device=d.device,
                                 stage=0 if i < canary else 1 + (i - canary) // policy.batch_size, state="waiting")
                for i, d in enumerate(ordered)]
        audit = audit_entry(actor, role, "deployment.create", kind, sha256, "ok",
                            deployment_id=deployment.id, **{kind: what}, target=target,
                            devices=len(rows), stages=stages, policy=policy.to_dict())
        self._store.add_deployment(deployment, rows, audit)
        self._wake()
        return deployment

    def _busy_devices(self) -> set[tuple[str, str]]:
        busy: set[tuple[str, str]] = set()
        for deployment in self._store.deployments_to_drive(FINAL_STATES, DEVICE_BUSY):
            busy |= {(d.site, d.device) for d in self._store.deployment_devices(deployment.id)
                     if deployment.state in ACTIVE_STATES or d.state in DEVICE_BUSY}
        return busy

    def act(self, deployment_id: str, action: str, actor: str, role: str) -> DeploymentRecord:
        """pause, resume, abort or rollback; DeploymentConflict when the state does not allow it."""
        allowed: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
            "pause": (("running",), {"state": "paused"}),
            "resume": (("paused",), {"state": "running"}),
            "abort": (("running", "paused"), {"state": "aborted", "reason": f"aborted by {actor}"}),
            "rollback": (("running", "paused", "succeeded", "aborted", "failed"),
                         {"state": "rolling_back", "after_rollback": "rolled_back",
                          "reason": f"rolled back by {actor}"}),
        }
        if action not in allowed:
            raise DeploymentError(f"unknown action {action!r} (pause, resume, abort, rollback)")
        current = self._store.get_deployment(deployment_id)
        if current is None:
            raise DeploymentNotFound(f"no deployment {deployment_id}")
        expect, changes = allowed[action]
        audit = audit_entry(actor, role, f"deployment.{action}", current.kind, current.sha256, "ok",
                            deployment_id=deployment_id, from_state=current.state)
        updated = self._store.update_deployment(deployment_id, now_ms(), expect=expect, audit=audit,
                                                detail={"action": action, "by": actor}, **changes)
        if updated is None:
            self._store.add_audit(audit_entry(actor, role, f"deployment.{action}", current.kind, current.sha256,
                                              "refused", deployment_id=deployment_id, state=current.state))
            raise DeploymentConflict(f"cannot {action} a deployment that is {current.state}")
        self._wake()
        return updated


def _online(device: DeviceRecord | None) -> bool:
    return device is not None and device.state == "online"


class DeploymentEngine(PeriodicLoop):
    """Background thread; ``run_once`` is one pass over every deployment that is not finished."""

    thread_name = "fleet-deployments"

    def __init__(self, store: DeploymentStore, wake_commands: Callable[[], None] = lambda: None, *,
                 tick_s: float = 0.5, on_change: Callable[[str], None] = lambda _id: None) -> None:
        super().__init__(tick_s)
        self._store = store
        self._wake_commands = wake_commands
        self._on_change = on_change
        self._changed = False

    def run_once(self) -> None:
        for deployment in self._store.deployments_to_drive(FINAL_STATES, DEVICE_BUSY):
            if self.stopping:
                return
            self._changed = False
            self._drive(deployment)
            if self._changed:
                self._on_change(deployment.id)

    # ------------------------------------------------------------ one deployment

    def _drive(self, dep: DeploymentRecord) -> None:
        devices = {(d.site, d.device): d for d in self._store.list_devices()}
        for row in self._store.deployment_devices(dep.id):
            self._step(dep, row, devices.get((row.site, row.device)))
        rows = self._store.deployment_devices(dep.id)
        if dep.state == "running":
            failed = [r for r in rows if r.state in ("failed", "rolling_back", "rollback_failed")]
            if failed:
                first = failed[0]
                stage = "canary" if first.stage == 0 else f"batch {first.stage}"
                self._set(dep, state="rolling_back", after_rollback="failed",
                          reason=f"{stage} {first.key} failed its gate: {first.reason}",
                          audit=("deployment.gate_failed", "error", {"device": first.key, "reason": first.reason}))
            else:
                self._advance(dep, rows, devices)
        elif dep.state == "rolling_back" and not any(r.state in DEVICE_BUSY or r.state == "healthy" for r in rows):
            final = dep.after_rollback or "rolled_back"
            bad = [r.key for r in rows if r.state == "rollback_failed"]
            self._set(dep, state=final, finished_ms=now_ms(),
                      audit=(f"deployment.{final}", "error" if bad or final == "failed" else "ok",
                             {"rollback_failed": bad, "reason": dep.reason}))

    def _advance(self, dep: DeploymentRecord, rows: list[DeploymentDevice],
                 devices: dict[tuple[str, str], DeviceRecord]) -> None:
        stage_rows = [r for r in rows if r.stage <= dep.stage]
        if dep.stage < dep.stages:
            current = [r for r in rows if r.stage == dep.stage]
            healthy = [r for r in current if r.state == "healthy"]
            # queued and online: it installs on the next pass, so the stage is not done yet
            offline = [r for r in current if r.state == "queued" and not _online(devices.get((r.site, r.device)))]
            if healthy and len(healthy) + len(offline) == len(current):
                self._set(dep, stage=dep.stage + 1, detail={
                    "stage_passed": "canary" if dep.stage == 0 else f"batch {dep.stage}",
                    "waiting_offline": [r.key for r in offline]})
            return
        if all(r.state == "healthy" for r in stage_rows):
            self._set(dep, state="succeeded", finished_ms=now_ms(),
                      audit=("deployment.succeeded", "ok", {"devices": len(rows)}))

    def _set(self, dep: DeploymentRecord, *, audit: tuple[str, str, dict[str, Any]] | None = None,
             detail: dict[str, Any] | None = None, **changes: Any) -> None:
        entry = (audit_entry("api", "system", audit[0], dep.kind, dep.sha256, audit[1], deployment_id=dep.id,
                             **audit[2]) if audit else None)
        if self._store.update_deployment(dep.id, now_ms(), expect=(dep.state,), audit=entry, detail=detail,
                                         **changes) is not None:
            self._changed = True
            log.info("deployment %s: %s", dep.id, changes)

    # ------------------------------------------------------------ one device

    def _move(self, row: DeploymentDevice, detail: dict[str, Any] | None = None,
              command: tuple[CommandRecord, AuditRecord] | None = None, **changes: Any) -> None:
        if self._store.update_deployment_device(row, now_ms(), detail=detail, command=command, **changes):
            self._changed = True
            if command is not None:
                self._wake_commands()

    def _step(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None) -> None:
        stopped = dep.state not in ("running", "paused")
        rolling = dep.state == "rolling_back"
        if row.state in ("waiting", "queued"):
            if stopped:
                self._move(row, state="skipped", reason=dep.reason)
            elif row.stage <= dep.stage and row.state == "waiting":
                self._move(row, state="queued")
            elif row.state == "queued" and dep.state == "running" and _online(device):
                self._install(dep, row, device)
        elif row.state == "installing":
            self._installing(dep, row, device)
        elif row.state == "verifying":
            if rolling:
                self._rollback(dep, row, device, "the rollout is rolled back")
            else:
                self._verify(dep, row, device)
        elif row.state == "healthy" and rolling:
            self._rollback(dep, row, device, "the rollout is rolled back")
        elif row.state == "failed" and self._runs_new(dep, row, device):
            self._rollback(dep, row, device, row.reason or "failed")  # loaded after all (a late reply)
        elif row.state == "rolling_back":
            self._rolling_back(dep, row, device)

    def _runs_new(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None) -> bool:
        """Whether the device took the rolled-out model or config (so leaving it needs a rollback command).
        A config: its apply reply was ok and changed something (the agent rolls a failed apply back itself)."""
        if dep.kind == "model":
            return running_sha(device) == dep.sha256
        command = self._store.get_command(row.command_id or "")
        result = ((command.reply or {}).get("result") or {}) if command is not None else {}
        return command is not None and command.state == "ok" and not result.get("unchanged")

    def _new_args(self, dep: DeploymentRecord) -> dict[str, Any]:
        if dep.kind == "model":
            return {"sha256": dep.sha256}
        config = self._store.get_config(dep.sha256)
        assert config is not None  # checked at create; versions are never deleted
        return {"patch": config.document, "version": dep.sha256}

    def _command(self, dep: DeploymentRecord, row: DeploymentDevice, args: dict[str, Any],
                 timeout_s: float) -> tuple[CommandRecord, AuditRecord]:
        capture = _CaptureCommand(self._store)
        CommandService(capture).create(site=row.site, device=row.device, name=dep.kind, args=args,
                                       actor=f"deployment:{dep.id[:8]}", role="system", timeout_s=timeout_s,
                                       api_url=dep.api_url)
        assert capture.captured is not None
        return capture.captured

    def _install(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord) -> None:
        now = now_ms()
        model = running_sha(device)
        config_hash = self._store.device_config_hash(row.site, row.device)
        before = model if dep.kind == "model" else config_hash
        stats = stats_baseline(self._store, row.site, row.device, now, model, config_hash)
        if stats is None and device.stats and device.stats.get("fps"):  # no history yet: its latest stats
            stats = {"fps": float(device.stats["fps"]),
                     "p95_ms": float((device.stats.get("latency_ms") or {}).get("p95") or 0.0), "samples": 1}
        fps = stats["fps"] if stats else None
        common = {"before_sha256": before, "before_fps": fps, "started_ms": now, "gate": {"before": stats or {}},
                  "baseline_count": baseline_count(self._store, row.site, row.device, now, model)}
        if dep.kind == "model" and before == dep.sha256:
            self._move(row, {"already_running": True}, state="verifying", loaded_ms=now, **common)
            return
        command = self._command(dep, row, self._new_args(dep), dep.gate.command_timeout_s)
        self._move(row, {"command_id": command[0].id, "before_sha256": before, "before": stats},
                   command=command, state="installing", command_id=command[0].id, **common)

    def _installing(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None) -> None:
        command = self._store.get_command(row.command_id or "")
        if command is None:  # cannot happen: stored with the move (kept as a clear failure, not a hang)
            self._move(row, state="failed", reason="its model command is missing")
            return
        if command.state in ("pending", "sent"):
            return
        reply = command.reply or {}
        result = reply.get("result") or {}
        if command.state == "ok" and dep.kind == "config":
            if result.get("config_hash"):
                self._move(row, {"reply": "ok", "config_hash": result["config_hash"]}, state="verifying",
                           loaded_ms=now_ms(), gate={**row.gate, "self_test": "ok", "config_hash": result["config_hash"],
                                                     "unchanged": bool(result.get("unchanged"))})
                return
            reason = "reply ok but without the config hash it applied (agent too old for config rollouts?)"
        elif command.state == "ok":
            loaded = (result.get("model") or {}).get("sha256")
            if loaded == dep.sha256:
                self._move(row, {"reply": "ok"}, state="verifying", loaded_ms=now_ms(),
                           gate={**row.gate, "self_test": "ok"})
                return
            reason = f"reply ok but it runs {str(loaded)[:12]}"
        elif command.state == "error":
            error = str(reply.get("error"))
            tries = int(row.gate.get("download_tries", 1))
            if dep.kind == "model" and error.startswith("download ") and tries < DOWNLOAD_TRIES:
                # the file did not arrive (the API restarted, a link dropped): nothing was loaded, so try again
                retry = self._command(dep, row, {"sha256": dep.sha256}, dep.gate.command_timeout_s)
                self._move(row, {"download_error": error, "retry": tries + 1}, command=retry,
                           command_id=retry[0].id, gate={**row.gate, "download_tries": tries + 1})
                return
            reason = (f"install or self-test failed: {error}" if dep.kind == "model"
                      else f"apply failed (the device kept its config): {error}")
        else:
            reason = f"no reply to the {dep.kind} command within {dep.gate.command_timeout_s:g} s"
        self._move(row, {"reason": reason}, state="failed", reason=reason, gate={**row.gate, "self_test": reason})

    def _verify(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None) -> None:
        expected = Expected(dep.kind, dep.sha256 if dep.kind == "model" else str(row.gate.get("config_hash")))
        result = evaluate(self._store, dep.gate, expected, row, device, now_ms())
        if result.verdict == "pass":
            self._move(row, {"gate": result.checks}, state="healthy", gate=result.checks)
        elif result.verdict == "fail":
            self._rollback(dep, row, device, result.reason or "gate failed", gate=result.checks)
        elif result.checks != row.gate:
            self._store.update_deployment_device(row, now_ms(), gate=result.checks)  # progress, no history row
            self._changed = True

    def _rollback(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None, reason: str,
                  gate: dict[str, Any] | None = None) -> None:
        """Back to the model or config it ran before: the agent's rollback slot (nothing to do if it never took
        the new one)."""
        extra = {"gate": gate} if gate is not None else {}
        failed = row.state == "verifying" and dep.state != "rolling_back"
        why = {"reason": reason} if failed or row.state == "failed" else {}
        if not self._runs_new(dep, row, device):
            self._move(row, {"never_loaded": True, **why}, state="failed" if why else "rolled_back", **why, **extra)
            return
        command = self._command(dep, row, {"rollback": True}, ROLLBACK_TIMEOUT_S)
        audit = audit_entry("api", "system", "deployment.device_rollback", "device", row.key, "pending",
                            deployment_id=dep.id, reason=reason, command_id=command[0].id)
        if self._store.update_deployment_device(row, now_ms(), detail={"rollback": command[0].id, "why": reason},
                                                command=command, audit=audit, state="rolling_back",
                                                rollback_command_id=command[0].id, **why, **extra):
            self._changed = True
            self._wake_commands()

    def _rolling_back(self, dep: DeploymentRecord, row: DeploymentDevice, device: DeviceRecord | None) -> None:
        command = self._store.get_command(row.rollback_command_id or "")
        if command is None or command.state in ("pending", "sent"):
            return
        result = (command.reply or {}).get("result") or {}
        back = result.get("config_hash") if dep.kind == "config" else (result.get("model") or {}).get("sha256")
        if command.state == "ok" and (dep.kind == "config" or back != dep.sha256):
            self._move(row, {"now_running": back}, state="rolled_back")
            return
        error = (command.reply or {}).get("error") if command.state == "error" else "no reply"
        if (dep.kind == "model" and row.before_sha256 and command.args.get("rollback")
                and self._store.get_model(row.before_sha256)):
            # the rollback slot did not work: install the model it ran before from the registry
            retry = self._command(dep, row, {"sha256": row.before_sha256}, ROLLBACK_TIMEOUT_S)
            self._move(row, {"rollback_error": error, "reinstall": row.before_sha256}, command=retry,
                       rollback_command_id=retry[0].id)
            return
        self._move(row, {"rollback_error": error}, state="rollback_failed",
                   reason=f"{row.reason or ''}; rollback failed: {error}".lstrip("; "))
