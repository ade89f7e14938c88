"""``fieldline demo``: embedded MQTT broker + cloud API on SQLite + simulated greenhouse cameras, one process.

Sheds are grouped four to an edge device, as on a site where one box serves a block of sheds. Simulated
time runs fast (one real second is ``time_scale`` simulated seconds) so fruits visibly ripen during a demo.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from cloud_api.core.config import Settings
from cloud_api.main import create_app
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.factory import build_detector
from edge_agent.detectors.onnx_detector import ModelLoadError
from fieldline.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from models.zoo_index import default_file

log = logging.getLogger(__name__)
SITE = "demo-greenhouse"
SHEDS_PER_DEVICE = 4
DEMO_MODEL = default_file("tomato-ripeness")  # the faster of FP32/INT8 as measured for its card


class DemoError(RuntimeError):
    pass


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def demo_agent_configs(data_dir: Path, sheds: int, mqtt_port: int, model: Path) -> list[AgentConfig]:
    """One agent per block of ``SHEDS_PER_DEVICE`` sheds, one synthetic camera per shed."""
    configs = []
    for first in range(0, sheds, SHEDS_PER_DEVICE):
        device = f"gh-edge-{first // SHEDS_PER_DEVICE + 1:02d}"
        cameras = [
            {
                "name": f"cam-{n:02d}",
                "source": {"type": "synthetic", "seed": 1000 + n, "ripening_per_hour": 0.004, "time_scale": 600},
                "zone": {"kind": "shed", "id": f"shed-{n:02d}"},
                "fps": 0.5,
                "publish_interval_s": 30,
                "smoothing_frames": 3,
            }
            for n in range(first + 1, min(first + SHEDS_PER_DEVICE, sheds) + 1)
        ]
        configs.append(
            AgentConfig.model_validate(
                {
                    "device": device,
                    "site": SITE,
                    "data_dir": data_dir / "edge" / device,
                    "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
                    "model": {"path": model, "precision": "auto"},
                    "cameras": cameras,
                    "stats_interval_s": 60,
                }
            )
        )
    return configs


class Demo:
    def __init__(self, data_dir: Path, api_port: int = 8000, mqtt_port: int = 1883, sheds: int = 24,
                 model: Path = DEMO_MODEL) -> None:
        self.data_dir = data_dir
        self.api_port = api_port
        self.mqtt_port = mqtt_port
        self.sheds = sheds
        self.model = model

    def _token(self) -> str:
        """Keep the token across demo runs so a phone app or bookmark set up once keeps working."""
        path = self.data_dir / "demo.json"
        if path.exists():
            try:
                token = json.loads(path.read_text())["token"]
                if isinstance(token, str) and token:
                    return token
            except (ValueError, KeyError, TypeError):
                pass
        return secrets.token_urlsafe(24)

    def run(self, stop: threading.Event, duration_s: float | None = None,
            on_ready: Callable[[dict], None] | None = None) -> dict:
        for port, what in ((self.api_port, "API"), (self.mqtt_port, "MQTT")):
            if not _port_free("127.0.0.1", port):
                raise DemoError(f"port {port} for the {what} is in use; pick another with --{what.lower()}-port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        configs = demo_agent_configs(self.data_dir, self.sheds, self.mqtt_port, self.model)
        try:
            detector = build_detector(configs[0].model)  # one shared detector: the faster of FP32/INT8 here
        except ModelLoadError as exc:
            raise DemoError(f"demo model: {exc}") from None
        token = self._token()
        info = {
            "api_url": f"http://127.0.0.1:{self.api_port}",
            "token": token,
            "mqtt_host": "127.0.0.1",
            "mqtt_port": self.mqtt_port,
            "site": SITE,
            "sheds": self.sheds,
            "model": str(detector.precision_choice.chosen if detector.precision_choice else self.model),
            "data_dir": str(self.data_dir),
        }
        broker = EmbeddedBroker("127.0.0.1", self.mqtt_port)
        try:
            broker.start()
        except EmbeddedBrokerError as exc:
            raise DemoError(str(exc)) from None
        settings = Settings(data_dir=self.data_dir, mqtt_port=self.mqtt_port, api_tokens=[token],
                            mqtt_client_id="fieldline-demo-api")
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.api_port,
                                               log_level="warning", lifespan="on"))
        server.install_signal_handlers = lambda: None  # the CLI owns SIGINT/SIGTERM
        api_thread = threading.Thread(target=server.run, name="api", daemon=True)
        agent_stop = threading.Event()
        agents = [Agent(cfg, detector) for cfg in configs]
        agent_threads = [threading.Thread(target=a.run, args=(agent_stop,), name=f"agent-{a.config.device}",
                                          daemon=True) for a in agents]
        try:
            api_thread.start()
            deadline = time.monotonic() + 20
            while not server.started:
                if time.monotonic() > deadline or not api_thread.is_alive():
                    raise DemoError(f"the API did not start on port {self.api_port}")
                time.sleep(0.05)
            for thread in agent_threads:
                thread.start()
                time.sleep(0.3)  # amqtt mishandles simultaneous connects (a dict changes size mid-iteration)
            (self.data_dir / "demo.json").write_text(json.dumps(info, indent=2))
            if on_ready:
                on_ready(info)
            stop.wait(duration_s)
        finally:
            agent_stop.set()
            for thread in agent_threads:
                thread.join(timeout=15)
            server.should_exit = True
            api_thread.join(timeout=15)
            broker.stop()
        return info
