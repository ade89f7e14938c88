"""Live feed across workers: each worker NOTIFYs what it committed; every worker LISTENs and replays the others'.

The notification carries references only (event ids, alert ids, a device key), never the rows, so it stays
under PostgreSQL's 8,000-byte payload limit; the listening worker reads the rows and hands ``StoreChange``s to
its live listeners. Delivery is what a live feed needs (after commit, in commit order per sender); a
notification lost while a listener reconnects is not replayed (clients reload through the REST API).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from cloud_api.storage.records import StoreChange

log = logging.getLogger(__name__)

CHANNEL = "fieldline_changes"
_MAX_PAYLOAD = 7000


def payloads(sender: str, changes: list[StoreChange]) -> list[str]:
    """The NOTIFY payloads describing ``changes`` (several when many events were stored at once)."""
    refs: list[list[Any]] = []
    for change in changes:
        subject = change.subject
        if change.kind in ("count", "inspection"):
            refs.append(["e", change.kind, subject.id])
        elif change.kind == "alert":
            refs.append(["a", change.change, subject.id])
        elif change.kind == "device":
            refs.append(["d", subject.site, subject.device])
    out: list[str] = []
    chunk: list[list[Any]] = []
    size = 0
    for ref in refs:
        item = len(json.dumps(ref)) + 1
        if chunk and size + item > _MAX_PAYLOAD:
            out.append(json.dumps({"w": sender, "c": chunk}, separators=(",", ":")))
            chunk, size = [], 0
        chunk.append(ref)
        size += item
    if chunk:
        out.append(json.dumps({"w": sender, "c": chunk}, separators=(",", ":")))
    return out


class NotifyListener:
    """A thread with its own connection that LISTENs and calls ``on_payload`` for other workers' payloads."""

    def __init__(self, dsn: str, sender: str, on_payload: Callable[[dict[str, Any]], None]) -> None:
        self._dsn = dsn
        self._sender = sender
        self._on_payload = on_payload
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.listening = threading.Event()  # set while LISTEN is active (tests wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")  # type: ignore[arg-type]
                    self.listening.set()
                    delay = 0.2
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self._dispatch(notify.payload)
            except psycopg.Error as exc:
                self.listening.clear()
                if self._stop.is_set():
                    return
                log.warning("live feed LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # noqa: BLE001 - the feed must outlive one bad notification
                log.exception("live feed listener failed; restarting it")
                time.sleep(0.5)
        self.listening.clear()

    def _dispatch(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a notification that is not JSON: %.80r", payload)
            return
        if message.get("w") == self._sender:
            return  # our own: the local listeners already had it
        try:
            self._on_payload(message)
        except Exception:  # noqa: BLE001 - a broken listener must not stop the feed
            log.exception("live feed listener failed on a notification")
