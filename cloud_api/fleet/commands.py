"""Device commands from the API: stored first, then published on ``cmd/{name}`` until answered or timed out.

Life of a command: ``CommandService.create`` commits it as ``pending`` (with an audit row) and wakes the
``CommandDispatcher``; the dispatcher publishes it through the ingest worker's MQTT client and marks it
``sent`` at the broker's PUBACK. The device's reply on ``cmd/{name}/reply`` is stored by the ingest writer
(``ok`` / ``error``, matched by request id, site and device). A command without a reply by its deadline
becomes ``timed_out``.

Nothing unanswered is lost across an API restart or a broker loss: the dispatcher publishes every open
command it has not published in this process (so, after a restart, all of them once more), and again every
``resend_s`` while it stays unanswered. The agent answers a repeated request id from its reply ledger
without running the command again, so re-publishing is always safe.

Every API process runs a dispatcher; one without the MQTT connection (``ingest_enabled: false``) only
records time-outs, and the commands it stores are published by the dispatcher of a worker that has the
connection (they share the database, which each dispatcher polls every ``tick_s``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fieldline.contract import Command, command_topic

from cloud_api.fleet import download_tokens
from cloud_api.fleet.loop import PeriodicLoop
from cloud_api.fleet.records import AuditRecord, CommandRecord, ModelRecord

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = {"snapshot": 30.0, "restart": 60.0, "config": 60.0, "model": 600.0, "sample": 60.0}
_SECRET_WORDS = ("password", "token", "secret")


class CommandRefused(ValueError):
    """A command the API will not send; the message says why."""


class UnknownTarget(LookupError):
    """The device or model a command names is not known to this API."""


class CommandStore(Protocol):
    def add_command(self, command: CommandRecord, audit: AuditRecord) -> None: ...

    def get_command(self, command_id: str) -> CommandRecord | None: ...

    def open_commands(self, now_ms: int) -> list[CommandRecord]: ...

    def mark_command_sent(self, command_id: str, now_ms: int) -> bool: ...

    def expire_commands(self, now_ms: int) -> list[CommandRecord]: ...

    def get_model(self, sha256: str) -> ModelRecord | None: ...

    def fleet_key(self, name: str) -> bytes: ...


Publish = Callable[[str, bytes], bool]  # (topic, payload) -> the broker acknowledged it


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def redact(value: Any) -> Any:
    """A copy with passwords and tokens blanked (config commands carry the agent's MQTT password)."""
    if isinstance(value, dict):
        return {k: "<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) and v is not None else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class CommandService:
    """Validates and stores commands; ``wake`` tells the dispatcher there is something to send."""

    def __init__(self, store: CommandStore, wake: Callable[[], None] = lambda: None) -> None:
        self._store = store
        self._wake = wake

    def create(self, *, site: str, device: str, name: str, args: dict[str, Any], actor: str, role: str,
               timeout_s: float | None, api_url: str) -> CommandRecord:
        created = now_ms()
        deadline = created + int(1000 * (timeout_s or DEFAULT_TIMEOUT_S[name]))
        command_id = uuid.uuid4().hex
        wire_args = self._wire_args(site, device, name, args, deadline, api_url)
        if name == "sample":  # the agent's Sample carries it back: the frame is matched to this request
            wire_args["request_id"] = command_id
        command = CommandRecord(id=command_id, site=site, device=device, name=name, args=wire_args, state="pending",
                                created_by=actor, created_ms=created, deadline_ms=deadline)
        audit = AuditRecord(id=0, ts_ms=created, actor=actor, role=role, action=f"command.{name}", target_kind="device",
                            target=f"{site}/{device}", result="pending",
                            detail={"command_id": command_id, "args": summarize(name, wire_args)})
        self._store.add_command(command, audit)  # committed before anything is published
        self._wake()
        return command

    def _wire_args(self, site: str, device: str, name: str, args: dict[str, Any], deadline_ms: int,
                   api_url: str) -> dict[str, Any]:
        if name == "snapshot":
            camera = args.get("camera")
            if camera is not None and not isinstance(camera, str):
                raise CommandRefused("args.camera must be a camera name (a string)")
            return {"camera": camera} if camera else {}
        if name == "sample":
            return sample_args(args)
        if name == "restart":
            if args:
                raise CommandRefused(f"restart takes no args, got {', '.join(sorted(args))}")
            return {}
        if name == "config":
            return config_args(args)
        return self._model_args(site, device, args, deadline_ms, api_url)

    def _model_args(self, site: str, device: str, args: dict[str, Any], deadline_ms: int,
                    api_url: str) -> dict[str, Any]:
        if args.get("rollback") is True and set(args) == {"rollback"}:
            return {"rollback": True}
        sha256 = args.get("sha256")
        if set(args) != {"sha256"} or not isinstance(sha256, str):
            raise CommandRefused("model needs args.sha256 (a registered model file) or args.rollback: true")
        model = self._store.get_model(sha256.lower())
        if model is None:
            raise UnknownTarget(f"no model with sha256 {sha256} in the registry (push it first)")
        key = self._store.fleet_key(download_tokens.KEY_NAME)
        token = download_tokens.issue(key, site, device, model.sha256,
                                      deadline_ms + download_tokens.DOWNLOAD_GRACE_MS)
        return {"url": f"{api_url.rstrip('/')}/api/v1/models/{model.sha256}/file", "sha256": model.sha256,
                "token": token, "name": model.name, "version": model.version}


def config_args(args: dict[str, Any]) -> dict[str, Any]:
    """{config: whole agent config}, {patch: config version, version: its sha256} or {rollback: true}."""
    if set(args) == {"config"} and isinstance(args["config"], dict):
        return {"config": args["config"]}
    if set(args) == {"patch", "version"} and isinstance(args["patch"], dict) and isinstance(args["version"], str):
        return {"patch": args["patch"], "version": args["version"]}
    if set(args) == {"rollback"} and args["rollback"] is True:
        return {"rollback": True}
    raise CommandRefused("config needs args.config (the whole agent config as a JSON object), args.patch with "
                         "args.version (a config version), or args.rollback: true")


def sample_args(args: dict[str, Any]) -> dict[str, Any]:
    """Args of ``sample`` (a frame for the datasets, issue 40): {camera?, note?}; request_id is the command id."""
    unknown = set(args) - {"camera", "note", "request_id"}
    if unknown:
        raise CommandRefused(f"sample takes camera and note, not {', '.join(sorted(unknown))}")
    camera, note = args.get("camera"), args.get("note")
    if camera is not None and not isinstance(camera, str):
        raise CommandRefused("args.camera must be a camera name (a string)")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise CommandRefused("args.note must be a string of at most 500 characters")
    return {"camera": camera or None, "note": note}


def summarize(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a command's args: no token, a config only by its size."""
    if name == "model":
        return {k: v for k, v in args.items() if k in ("sha256", "name", "version", "rollback")}
    if name == "config":
        if "patch" in args:
            return {"version": args.get("version"), "patch_keys": sorted(args["patch"])}
        return {"rollback": True} if args.get("rollback") else {"config_keys": sorted(args.get("config", {}))}
    return dict(args)


class CommandDispatcher(PeriodicLoop):
    """Background thread: time-outs, and publishing of open commands (see the module docstring)."""

    thread_name = "fleet-commands"

    def __init__(self, store: CommandStore, publish: Publish | None, *, tick_s: float = 0.5,
                 resend_s: float = 30.0) -> None:
        super().__init__(tick_s)
        self._store = store
        self._publish = publish
        self._resend_s = resend_s
        self._last_publish: dict[str, float] = {}  # command id -> monotonic time, this process only
        self.published = 0
        self.publish_failures = 0

    def run_once(self) -> None:
        now = now_ms()
        for command in self._store.expire_commands(now):
            log.warning("command %s %s to %s/%s timed out", command.id, command.name, command.site, command.device)
            self._last_publish.pop(command.id, None)
        if self._publish is None:
            return  # no broker connection in this process
        due = time.monotonic() - self._resend_s
        open_commands = self._store.open_commands(now)
        answered = set(self._last_publish) - {c.id for c in open_commands}
        for command_id in answered:
            del self._last_publish[command_id]
        for command in open_commands:
            if self.stopping:
                return
            last = self._last_publish.get(command.id)
            if last is not None and last > due:
                continue
            self._send(command)

    def _send(self, command: CommandRecord) -> None:
        assert self._publish is not None
        payload = Command(request_id=command.id, name=command.name,  # type: ignore[arg-type]
                          ts_ms=now_ms(), args=command.args).to_json()
        if not self._publish(command_topic(command.site, command.device, command.name), payload):
            self.publish_failures += 1
            return  # not connected or no PUBACK: the next pass tries again
        self._last_publish[command.id] = time.monotonic()
        self.published += 1
        self._store.mark_command_sent(command.id, now_ms())
