"""An embedded MQTT 3.1.1 broker (amqtt) in a background thread, for ``fieldline demo`` and quick trials.

Production sites use Mosquitto (deploy/); amqtt has no ``$share`` subscriptions and ~1.3k msg/s here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

log = logging.getLogger(__name__)


class EmbeddedBrokerError(RuntimeError):
    pass


class EmbeddedBroker:
    """Start with :meth:`start`, stop with :meth:`stop`; binds ``host:port`` (loopback by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _config(self) -> dict:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._broker = Broker(self._config(), loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def start(self, timeout: float = 10.0) -> None:
        for name in ("amqtt", "transitions", "passlib"):
            logging.getLogger(name).setLevel(logging.WARNING)
        with socket.socket() as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise EmbeddedBrokerError(f"cannot start the MQTT broker: {self.host}:{self.port} is already in use")
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise EmbeddedBrokerError(f"embedded MQTT broker on {self.host}:{self.port} did not start in {timeout}s")
        if self._error is not None:
            raise EmbeddedBrokerError(f"embedded MQTT broker on {self.host}:{self.port} failed: {self._error}")
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        if self._loop is None or self._broker is None or not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(timeout=10)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            log.warning("embedded broker shutdown: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
