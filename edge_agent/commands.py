"""Remote control on ``cmd/{name}``: config, model (OTA), snapshot, sample, restart. Replies on ``cmd/{name}/reply``.

``config`` takes the whole agent config (``args.config``), a config version from a cloud rollout (``args.patch``,
a JSON merge patch over the running config, see ``edge_agent.config_slots``) or ``args.rollback: true`` (back to
the previous-config slot); its reply carries the ``config_hash`` now running (the status reports the same).

Commands are queued by the MQTT network thread and executed one at a time on a worker thread, so a slow
model download never stalls MQTT keepalives. Replies go through the spool, so they survive a link drop.

A command is executed at most once per ``request_id``: the cloud re-publishes commands it has no reply to
(after an API restart, say), and QoS 1 itself may deliver twice. Every reply is written to a small ledger
(``{data_dir}/commands.db``, the newest ``LEDGER_KEEP`` request ids, kept across agent restarts) before it is
sent; a request id found there is answered again with the stored reply and not executed again.

The handler sees the agent only through :class:`CommandTarget`, so this module does not import the agent.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from edge_agent.config import AgentConfig
from edge_agent.config_slots import PatchError, check_patch, merge_patch
from edge_agent.ota import OtaError
from fieldline.config import config_context, describe_errors
from fieldline.contract import (
    Command,
    CommandReply,
    ContractError,
    ModelRef,
    command_reply_topic,
    parse_payload,
    parse_topic,
)

log = logging.getLogger(__name__)

LEDGER_KEEP = 1000  # request ids remembered (a command is re-published within hours, not thousands later)


class CommandError(RuntimeError):
    """A command that was understood but refused; the message goes back in the reply."""


class CommandTarget(Protocol):
    """What the command handler needs from the agent it controls."""

    config: AgentConfig
    config_path: Path | None

    @property
    def model_ref(self) -> ModelRef: ...

    def enqueue(self, topic: str, payload: bytes) -> None:
        """Append a QoS 1 message to the outbox and wake the publisher."""
        ...

    def publish_snapshot(self, camera: str) -> str: ...

    def sample_now(self, camera: str | None, request_id: str | None, note: str | None) -> dict[str, Any]: ...

    def apply_config(self, new: AgentConfig) -> str: ...

    def rollback_config(self) -> dict[str, Any]: ...

    @property
    def config_hash(self) -> str: ...

    def install_model(self, url: str, sha256: str, token: str | None = None) -> dict[str, Any]: ...

    def rollback_model(self) -> dict[str, Any]: ...

    def request_restart(self) -> None: ...


class ReplyLedger:
    """Replies already sent, by request id, in SQLite (safe to use from any one thread at a time)."""

    def __init__(self, path: Path, keep: int = LEDGER_KEEP) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._keep = keep
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS replies (request_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "reply BLOB NOT NULL, n INTEGER NOT NULL)")

    def get(self, request_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            row = self._conn.execute("SELECT name, reply FROM replies WHERE request_id = ?", (request_id,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def put(self, request_id: str, name: str, reply: bytes) -> None:
        with self._lock:
            n = self._conn.execute("SELECT coalesce(max(n), 0) + 1 FROM replies").fetchone()[0]
            self._conn.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)", (request_id, name, reply, n))
            self._conn.execute("DELETE FROM replies WHERE n <= ?", (n - self._keep,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CommandHandler:
    def __init__(self, agent: CommandTarget, ledger: ReplyLedger | None = None) -> None:
        self.agent = agent
        self.ledger = ledger or ReplyLedger(agent.config.data_dir / "commands.db")
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100)
        self.rejected = 0  # payloads that were not commands at all (counted, logged)
        self.repeated = 0  # request ids answered from the ledger instead of being executed again

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except queue.Full:
            self.rejected += 1
            log.warning("command queue full; dropped a command on %s", topic)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                topic, payload = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(topic, payload)

    def handle(self, topic: str, payload: bytes) -> None:
        name = parse_topic(topic).arg or ""
        try:
            command = parse_payload(Command, payload)
        except ContractError as exc:
            self.rejected += 1
            request_id = _request_id_of(payload)
            log.warning("bad command on %s: %s", topic, exc)
            if request_id:
                self._reply(name, request_id, ok=False, error=f"invalid command: {exc}")
            return
        done = self.ledger.get(command.request_id)
        if done is not None:
            self.repeated += 1
            log.info("command %s (%s) already answered; sending the same reply again", name, command.request_id)
            cfg = self.agent.config
            self.agent.enqueue(command_reply_topic(cfg.site, cfg.device, done[0]), done[1])
            return
        if command.name != name:
            self._reply(name, command.request_id, ok=False,
                        error=f"command name {command.name!r} does not match the topic's {name!r}")
            return
        try:
            result = getattr(self, f"_do_{command.name}")(command.args)
        except (CommandError, OtaError) as exc:
            log.warning("command %s (%s) refused: %s", command.name, command.request_id, exc)
            self._reply(name, command.request_id, ok=False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - report, keep the agent alive
            log.exception("command %s (%s) failed", command.name, command.request_id)
            self._reply(name, command.request_id, ok=False, error=f"{type(exc).__name__}: {exc}")
        else:
            log.info("command %s (%s) done: %s", command.name, command.request_id, result)
            self._reply(name, command.request_id, ok=True, result=result)
            if command.name == "restart":
                self.agent.request_restart()

    def _reply(self, name: str, request_id: str, ok: bool, error: str | None = None,
               result: dict[str, Any] | None = None) -> None:
        reply = CommandReply(request_id=request_id, ok=ok, error=error, ts_ms=int(time.time() * 1000), result=result)
        payload = reply.to_json()
        self.ledger.put(request_id, name, payload)  # before it leaves: a repeat is answered, never re-run
        cfg = self.agent.config
        self.agent.enqueue(command_reply_topic(cfg.site, cfg.device, name), payload)

    # ------------------------------------------------------------------ commands
    def _do_snapshot(self, args: dict[str, Any]) -> dict[str, Any]:
        camera = args.get("camera") or self.agent.config.cameras[0].name
        if not isinstance(camera, str):
            raise CommandError("args.camera must be a camera name")
        return {"snapshot": self.agent.publish_snapshot(camera), "camera": camera}

    def _do_sample(self, args: dict[str, Any]) -> dict[str, Any]:
        """A frame for the datasets now (issue 40): a Sample with reason on_demand carrying ``request_id``."""
        camera, request_id, note = args.get("camera"), args.get("request_id"), args.get("note")
        for key, value in (("camera", camera), ("request_id", request_id), ("note", note)):
            if value is not None and not isinstance(value, str):
                raise CommandError(f"args.{key} must be a string")
        return self.agent.sample_now(camera, request_id, note)

    def _do_restart(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"restarting": True}

    def _do_config(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("rollback") is True:
            return self.agent.rollback_config()
        if "patch" in args:
            try:
                patch = check_patch(args["patch"])
            except PatchError as exc:
                raise CommandError(f"args.patch: {exc}") from None
            data = merge_patch(self.agent.config.model_dump(mode="json"), patch)
        else:
            data = args.get("config")
        if not isinstance(data, dict):
            raise CommandError("args.config must be the whole agent config as a JSON object (or args.patch a "
                               "config version, or args.rollback true)")
        try:
            # relative paths mean what they mean in the agent's config file: its folder
            new = AgentConfig.model_validate(data, context=config_context(self.agent.config_path))
        except ValidationError as exc:
            raise CommandError("invalid config, the running one is kept: " + "; ".join(describe_errors(exc))) from None
        current = self.agent.config
        if (new.device, new.site) != (current.device, current.site):
            raise CommandError("device and site cannot be changed remotely (they are the device's identity)")
        if new == current:  # nothing to do: the previous-config slot keeps what it has
            return {"applied": "unchanged", "unchanged": True, "config_hash": self.agent.config_hash}
        return {"applied": self.agent.apply_config(new), "config_hash": self.agent.config_hash}

    def _do_model(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("rollback"):
            return self.agent.rollback_model()
        url, sha256, token = args.get("url"), args.get("sha256"), args.get("token")
        if not isinstance(url, str) or not isinstance(sha256, str) or len(sha256) != 64:
            raise CommandError("args needs url (string) and sha256 (64 hex digits), or rollback: true")
        if token is not None and not isinstance(token, str):
            raise CommandError("args.token must be a string (the download token the cloud issued)")
        if self.agent.model_ref.sha256 == sha256.lower():
            # already running it: installing again would overwrite the rollback slot with the same file
            return {"model": self.agent.model_ref.model_dump(), "unchanged": True}
        return self.agent.install_model(url, sha256, token)


def _request_id_of(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
