"""A small local TCP proxy the soak puts between an edge agent and the broker, to cut the link on purpose.

    proxy = TcpProxy("127.0.0.1", broker_port).start()   # the agent connects to proxy.port
    proxy.set_mode("drop")    # open connections are reset, new ones are closed at once (a dead link)
    proxy.set_mode("stall")   # connections stay open but no byte moves either way (a black hole)
    proxy.set_mode("pass")    # back to normal
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from typing import Literal

log = logging.getLogger(__name__)
Mode = Literal["pass", "drop", "stall"]
MODES: tuple[Mode, ...] = ("pass", "drop", "stall")


class _Pair:
    """One proxied connection: client socket and upstream socket, pumped both ways by one thread."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; ``set_mode`` cuts or stalls the link. Thread-based."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.mode: Mode = "pass"
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connections = 0  # accepted and joined to the target
        self.refused = 0  # closed at once because the link was down

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()
        return self

    def set_mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"proxy mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        if mode == "drop":
            with self._lock:
                pairs = list(self._pairs)
            for pair in pairs:
                pair.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "drop":
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the broker is down: the agent sees a closed connection, as it would direct
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
            self.connections += 1
            threading.Thread(target=self._pump, args=(pair,), name=f"proxy-pump-{self.port}", daemon=True).start()

    def _pump(self, pair: _Pair) -> None:
        peer = {pair.client: pair.upstream, pair.upstream: pair.client}
        try:
            while not pair.closed.is_set():
                if self.mode == "stall":
                    time.sleep(0.1)  # bytes wait in the kernel buffers; nothing is read or sent
                    continue
                readable, _, _ = select.select(list(peer), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            pair.close()
            with self._lock:
                self._pairs.discard(pair)
