"""In-process pub/sub for live updates: any thread publishes, WebSocket handlers read on the event loop.

``publish`` is thread-safe: from a foreign thread (the ingest writer, a sync route in the threadpool) it hands
the message to the loop with ``call_soon_threadsafe``; on the loop it fans out directly. Every subscriber has
a bounded queue; when a slow client lags, the oldest message is dropped and counted (per subscriber and in
total), so a stuck client never holds memory or blocks ingest.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

MESSAGE_TYPES = ("count", "inspection", "alert", "device")


@dataclass(frozen=True)
class LiveCounters:
    subscribers: int
    published: int  # messages handed to the hub
    delivered: int  # messages queued to subscribers (one per subscriber)
    dropped: int  # messages dropped because a subscriber's queue was full
    lost: int  # messages published while no loop was running (shutdown)


class Subscription:
    """One client's bounded queue; read it with ``await get()`` on the hub's loop."""

    def __init__(self, maxsize: int) -> None:
        self._messages: deque[dict[str, Any]] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def _put(self, message: dict[str, Any]) -> bool:
        """Queue a message; False when the oldest had to be dropped to make room."""
        dropped = False
        if len(self._messages) >= self._maxsize:
            self._messages.popleft()
            self.dropped += 1
            dropped = True
        self._messages.append(message)
        self._ready.set()
        return not dropped

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def get(self) -> dict[str, Any] | None:
        """The next message, with ``dropped`` (this client's total so far) added; None once the hub closes."""
        while not self._messages:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return {**self._messages.popleft(), "dropped": self.dropped}

    @property
    def pending(self) -> int:
        return len(self._messages)


class LiveHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()  # guards the counters, which foreign threads bump too
        self._published = self._delivered = self._dropped = self._lost = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the event loop that serves the WebSockets (call from the app's lifespan)."""
        self._loop = loop

    def close(self) -> None:
        """Wake every subscriber with end-of-stream; later publishes are counted as lost."""
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            self._call(loop, self._close_all)

    def subscribe(self) -> Subscription:
        """Call on the hub's loop."""
        subscription = Subscription(self._queue_size)
        if self._loop is None:
            subscription.close()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send ``{"type": kind, "data": data}`` to every subscriber; safe from any thread."""
        message = {"type": kind, "data": data}
        with self._lock:
            self._published += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            with self._lock:
                self._lost += 1
            return
        self._call(loop, self._fan_out, message)

    def counters(self) -> LiveCounters:
        with self._lock:
            return LiveCounters(subscribers=len(self._subscribers), published=self._published,
                                delivered=self._delivered, dropped=self._dropped, lost=self._lost)

    def _call(self, loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the check and the call
            with self._lock:
                self._lost += 1

    def _fan_out(self, message: dict[str, Any]) -> None:
        delivered = dropped = 0
        for subscription in list(self._subscribers):
            delivered += 1
            if not subscription._put(message):
                dropped += 1
        with self._lock:
            self._delivered += delivered
            self._dropped += dropped

    def _close_all(self) -> None:
        for subscription in list(self._subscribers):
            subscription.close()
