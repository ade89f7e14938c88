"""``fieldline demo``: embedded MQTT broker + cloud API on SQLite + simulated sheds and lines, one process.

Greenhouse: sheds are grouped four to an edge device, as on a site where one box serves a block of sheds.
Simulated time runs fast (one real second is ``time_scale`` simulated seconds) so fruits visibly ripen.
The sheds are not all alike, so the phone app shows every colour and the alert flow:

* ``shed-01`` is a big shed with four row cameras: about 46 pick-ready fruits (over the app's 40) and a row so
  ripe it raises an ``overripe`` warning;
* ``shed-02``'s camera drops out 15 s after the start for 45 s (then every 12 minutes): the agent raises
  ``camera_offline`` (critical) and the counts resume when the pictures come back.

Every shed also has a climate sensor (fieldline.demo_climate): FieldLine telemetry in odd sheds, Zigbee2MQTT
JSON in even ones (mapped to sheds in the API's ``climate_sensors``), with 8 days of hourly history published
at start and a 3-day temperature forecast given to the API, so the ripening forecast runs on a real series.

Factory: two inspection lines (fieldline.demo_lines) fill the QA dashboard. A demo operator login is created
and every address (home page, API docs, QA dashboard with a signed-in link, the phone app command) is printed.
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
from edge_agent.config import AgentConfig, SyntheticSource
from edge_agent.detectors.base import Detector
from edge_agent.detectors.factory import build_detector
from edge_agent.detectors.onnx_detector import ModelLoadError
from fieldline.demo_access import DEMO_USER, DemoLoginError, addresses, ensure_demo_login, new_password, signin_path
from fieldline.demo_climate import ClimateFeed, DemoClimate, demo_climate_sensors, put_forecasts
from fieldline.demo_feeds import FeedError, FolderFeed, Periodic, ShedCameraMaker, start_feeds
from fieldline.demo_lines import LINES, line_agent_config, line_feed, zone_names
from fieldline.demo_lines import SITE as FACTORY_SITE
from fieldline.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from models.zoo_index import default_file

log = logging.getLogger(__name__)
SITE = "demo-greenhouse"
SHEDS_PER_DEVICE = 4
DEMO_MODEL = default_file("tomato-ripeness")  # the faster of FP32/INT8 as measured for its card
RIPENING_PER_HOUR, TIME_SCALE = 0.004, 600
BIG_SHED = 1
BIG_SHED_SEEDS = (3021, 3146, 3004, 3099)  # rows r1..r4: 14 + 11 + 11 + 10 ripe fruits with the shipped model
OVERRIPE_SHARE = 0.75  # r1 is 82 % ripe: one overripe warning at start, more as the shed ripens
FLAKY_SHED = 2
FLAKY_OUTAGE = Periodic(first_s=15, length_s=45, every_s=720)
SHED_FPS = 0.25  # a greenhouse changes slowly: one frame every 4 s per camera keeps the demo's CPU low
FLAKY_PERIOD_S = 1 / SHED_FPS  # the flaky camera's picture period, as fast as the other cameras
FLAKY_OFFLINE_AFTER_S = 10.0


class DemoError(RuntimeError):
    pass


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def _synthetic(seed: int) -> dict:
    return {"type": "synthetic", "seed": seed, "ripening_per_hour": RIPENING_PER_HOUR, "time_scale": TIME_SCALE}


def flaky_folder(data_dir: Path) -> Path:
    return data_dir / "cameras" / f"shed-{FLAKY_SHED:02d}"


def _shed_cameras(data_dir: Path, n: int) -> list[dict]:
    common = {"fps": SHED_FPS, "publish_interval_s": 30, "smoothing_frames": 3}
    zone = {"kind": "shed", "id": f"shed-{n:02d}"}
    if n == BIG_SHED:
        return [{**common, "name": f"cam-{n:02d}-r{row}", "source": _synthetic(seed),
                 "zone": {**zone, "row": f"r{row}"},
                 "rule": {"type": "count", "overripe_label": "ripe", "overripe_share": OVERRIPE_SHARE}}
                for row, seed in enumerate(BIG_SHED_SEEDS, start=1)]
    if n == FLAKY_SHED:
        source = {"type": "folder", "path": flaky_folder(data_dir), "watch": True, "poll_s": 0.25}
        return [{**common, "name": f"cam-{n:02d}", "source": source, "zone": zone, "fps": 2 * SHED_FPS,
                 "alerts": {"offline_after_s": FLAKY_OFFLINE_AFTER_S, "cooldown_s": 300}}]
    return [{**common, "name": f"cam-{n:02d}", "source": _synthetic(1000 + n), "zone": zone}]


def demo_agent_configs(data_dir: Path, sheds: int, mqtt_port: int, model: Path) -> list[AgentConfig]:
    """One agent per block of ``SHEDS_PER_DEVICE`` sheds, one camera per shed (four in the big shed)."""
    configs = []
    for first in range(0, sheds, SHEDS_PER_DEVICE):
        device = f"gh-edge-{first // SHEDS_PER_DEVICE + 1:02d}"
        cameras = [cam for n in range(first + 1, min(first + SHEDS_PER_DEVICE, sheds) + 1)
                   for cam in _shed_cameras(data_dir, n)]
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


def demo_feeds(data_dir: Path, sheds: int) -> list[FolderFeed]:
    """The simulated cameras that write pictures into folders: every line, and the flaky shed camera."""
    feeds = [line_feed(data_dir, spec) for spec in LINES]
    if sheds >= FLAKY_SHED:
        maker = ShedCameraMaker(SyntheticSource.model_validate(_synthetic(1000 + FLAKY_SHED)))
        feeds.append(FolderFeed(f"shed-{FLAKY_SHED:02d}", flaky_folder(data_dir), maker, FLAKY_PERIOD_S,
                                outage=FLAKY_OUTAGE))
    return feeds


class Demo:
    def __init__(self, data_dir: Path, api_port: int = 8000, mqtt_port: int = 1883, sheds: int = 24,
                 model: Path = DEMO_MODEL) -> None:
        self.data_dir = data_dir
        self.api_port = api_port
        self.mqtt_port = mqtt_port
        self.sheds = sheds
        self.model = model

    def _saved(self) -> dict:
        """Kept across demo runs so a phone app, bookmark or login set up once keeps working."""
        path = self.data_dir / "demo.json"
        try:
            saved = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            return {}
        return saved if isinstance(saved, dict) else {}

    def _save(self, info: dict) -> None:
        """demo.json holds the demo's service token and login: readable by its owner only."""
        path = self.data_dir / "demo.json"
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(info, indent=2))

    @staticmethod
    def _text(saved: dict, key: str) -> str | None:
        value = saved.get(key)
        return value if isinstance(value, str) and value else None

    def _detectors(self, shed_configs: list[AgentConfig],
                   line_configs: list[AgentConfig]) -> tuple[Detector, list[Detector]]:
        try:
            shed_detector = build_detector(shed_configs[0].model)  # one shared detector: the faster of FP32/INT8
            return shed_detector, [build_detector(cfg.model) for cfg in line_configs]
        except ModelLoadError as exc:
            raise DemoError(f"demo model: {exc}") from None

    def run(self, stop: threading.Event, duration_s: float | None = None,
            on_ready: Callable[[dict], None] | None = None) -> dict:
        for port, what in ((self.api_port, "API"), (self.mqtt_port, "MQTT")):
            if not _port_free("127.0.0.1", port):
                raise DemoError(f"port {port} for the {what} is in use; pick another with --{what.lower()}-port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request of the demo login
        shed_configs = demo_agent_configs(self.data_dir, self.sheds, self.mqtt_port, self.model)
        line_configs = [line_agent_config(self.data_dir, self.mqtt_port, spec) for spec in LINES]
        shed_detector, line_detectors = self._detectors(shed_configs, line_configs)
        feeds = demo_feeds(self.data_dir, self.sheds)
        try:
            for feed in feeds:
                feed.prepare()
        except FeedError as exc:
            raise DemoError(str(exc)) from None
        saved = self._saved()
        token = self._text(saved, "token") or secrets.token_urlsafe(24)
        api_url = f"http://127.0.0.1:{self.api_port}"
        choice = shed_detector.precision_choice
        info = {
            "api_url": api_url,
            "token": token,
            "mqtt_host": "127.0.0.1",
            "mqtt_port": self.mqtt_port,
            "site": SITE,
            "sheds": self.sheds,
            "factory_site": FACTORY_SITE,
            "lines": [spec.line for spec in LINES],
            "model": str(choice.chosen if choice else self.model),
            "line_models": [str(cfg.model.path) for cfg in line_configs],
            "data_dir": str(self.data_dir),
        }
        broker = EmbeddedBroker("127.0.0.1", self.mqtt_port)
        try:
            broker.start()
        except EmbeddedBrokerError as exc:
            raise DemoError(str(exc)) from None
        settings = Settings(data_dir=self.data_dir, mqtt_port=self.mqtt_port, api_tokens=[token],
                            mqtt_client_id="fieldline-demo-api", zone_names=zone_names(),
                            climate_sensors=demo_climate_sensors(SITE, self.sheds))
        climate = DemoClimate(SITE, self.sheds, time.time_ns() // 1_000_000, settings.timezone)
        climate_feed = ClimateFeed(climate, "127.0.0.1", self.mqtt_port)
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.api_port,
                                               log_level="warning", lifespan="on"))
        server.install_signal_handlers = lambda: None  # the CLI owns SIGINT/SIGTERM
        api_thread = threading.Thread(target=server.run, name="api", daemon=True)
        agent_stop = threading.Event()
        agents = [Agent(cfg, shed_detector) for cfg in shed_configs]
        agents += [Agent(cfg, detector) for cfg, detector in zip(line_configs, line_detectors, strict=True)]
        agent_threads = [threading.Thread(target=a.run, args=(agent_stop,), name=f"agent-{a.config.device}",
                                          daemon=True) for a in agents]
        feed_threads: list[threading.Thread] = []
        try:
            api_thread.start()
            deadline = time.monotonic() + 20
            while not server.started:
                if time.monotonic() > deadline or not api_thread.is_alive():
                    raise DemoError(f"the API did not start on port {self.api_port}")
                time.sleep(0.05)
            try:
                user, password, user_token = ensure_demo_login(
                    api_url, token, self._text(saved, "user") or DEMO_USER,
                    self._text(saved, "password") or new_password())
                signin = signin_path(api_url, user_token)
            except DemoLoginError as exc:
                raise DemoError(f"demo login: {exc}") from None
            info.update(user=user, password=password, user_token=user_token,
                        **addresses(api_url, user_token, signin))
            feed_threads = start_feeds(feeds, agent_stop)
            for thread in agent_threads:
                thread.start()
                time.sleep(0.3)  # amqtt mishandles simultaneous connects (a dict changes size mid-iteration)
            feed_threads.append(climate_feed.start(agent_stop))
            put_forecasts(climate, api_url, token, time.time_ns() // 1_000_000)
            self._save(info)
            if on_ready:
                on_ready(info)
            stop.wait(duration_s)
        finally:
            agent_stop.set()
            for thread in agent_threads + feed_threads:
                if thread.ident is not None:  # started
                    thread.join(timeout=15)
            server.should_exit = True
            api_thread.join(timeout=15)
            broker.stop()
        return info
