"""Remote control on ``cmd/{name}``: config, model (OTA), snapshot, restart. Replies on ``cmd/{name}/reply``.

Commands are queued by the MQTT network thread and executed one at a time on a worker thread, so a slow
model download never stalls MQTT keepalives. Replies go through the spool, so they survive a link drop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge_agent.config import AgentConfig
from edge_agent.ota import OtaError
from fieldline.config import config_context, describe_errors
from fieldline.contract import Command, CommandReply, ContractError, command_reply_topic, parse_payload, parse_topic

if TYPE_CHECKING:
    from edge_agent.agent import Agent

log = logging.getLogger(__name__)


class CommandError(RuntimeError):
    """A command that was understood but refused; the message goes back in the reply."""


class CommandHandler:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100)
        self.rejected = 0  # payloads that were not commands at all (counted, logged)

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
        cfg = self.agent.config
        self.agent.spool.append(command_reply_topic(cfg.site, cfg.device, name), reply.to_json(), qos=1)
        self.agent.publisher.notify()

    # ------------------------------------------------------------------ commands
    def _do_snapshot(self, args: dict[str, Any]) -> dict[str, Any]:
        camera = args.get("camera") or self.agent.config.cameras[0].name
        if not isinstance(camera, str):
            raise CommandError("args.camera must be a camera name")
        return {"snapshot": self.agent.publish_snapshot(camera), "camera": camera}

    def _do_restart(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"restarting": True}

    def _do_config(self, args: dict[str, Any]) -> dict[str, Any]:
        data = args.get("config")
        if not isinstance(data, dict):
            raise CommandError("args.config must be the whole agent config as a JSON object")
        try:
            # relative paths mean what they mean in the agent's config file: its folder
            new = AgentConfig.model_validate(data, context=config_context(self.agent.config_path))
        except ValidationError as exc:
            raise CommandError("invalid config, the running one is kept: " + "; ".join(describe_errors(exc))) from None
        current = self.agent.config
        if (new.device, new.site) != (current.device, current.site):
            raise CommandError("device and site cannot be changed remotely (they are the device's identity)")
        return {"applied": self.agent.apply_config(new)}

    def _do_model(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("rollback"):
            return self.agent.rollback_model()
        url, sha256 = args.get("url"), args.get("sha256")
        if not isinstance(url, str) or not isinstance(sha256, str) or len(sha256) != 64:
            raise CommandError("args needs url (string) and sha256 (64 hex digits), or rollback: true")
        return self.agent.install_model(url, sha256)


def _request_id_of(payload: bytes) -> str | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
