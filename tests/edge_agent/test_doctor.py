from pathlib import Path

import onnx

from edge_agent.config import AgentConfig
from edge_agent.doctor import run_checks
from tests.support.live_api import free_port
from tests.support.mosquitto import MosquittoBroker

MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def config(tmp_path: Path, port: int, model: Path = MODEL, folder: Path | None = None) -> AgentConfig:
    source = {"type": "folder", "path": str(folder)} if folder else {"type": "synthetic", "seed": 1}
    return AgentConfig.model_validate({
        "device": "dev-1", "site": "farm", "data_dir": str(tmp_path / "edge"),
        "mqtt": {"host": "127.0.0.1", "port": port}, "model": {"path": str(model)},
        "cameras": [{"name": "cam-1", "source": source, "zone": {"id": "shed-01"}}],
    })


def test_all_checks_pass_on_a_healthy_box(tmp_path):
    with MosquittoBroker() as broker:
        checks = {c.name: c for c in run_checks(config(tmp_path, broker.port))}
    assert all(c.ok for c in checks.values()), checks
    assert "640x480" in checks["camera cam-1"].detail
    assert "tomato-ripeness" in checks["model"].detail
    # what the agent will run: tomato-ripeness 2.2 at 576, on the tight letterbox of a 4:3 picture
    assert "per 640x480 frame run at 576x448 (tight letterbox)" in checks["model"].detail
    calibrated = onnx.load(str(MODEL)).metadata_props  # the config leaves it unset: the file's own threshold
    conf = float(next(p.value for p in calibrated if p.key == "fieldline.count_conf"))
    assert f"conf {conf:.2f} (calibrated, from the file)" in checks["model"].detail


def test_each_failure_is_named(tmp_path):
    empty = tmp_path / "frames"
    empty.mkdir()
    port = free_port()
    checks = {c.name: c for c in run_checks(config(tmp_path, port, model=tmp_path / "missing.onnx", folder=empty))}
    assert not checks["camera cam-1"].ok and "no images" in checks["camera cam-1"].detail
    assert not checks["model"].ok and "missing.onnx" in checks["model"].detail
    assert not checks["broker"].ok and f"127.0.0.1:{port}" in checks["broker"].detail
    assert checks["disk"].ok and checks["clock"].ok


def test_model_check_warns_when_run_at_another_size_than_calibrated(tmp_path):
    cfg = config(tmp_path, free_port())
    cfg.model.input_size = 320  # close-up cameras; the file's threshold was picked at 576
    from edge_agent.doctor import check_model

    detail = check_model(cfg).detail
    assert "run at 320x256" in detail
    assert "calibrated at input 576, this config runs 320: `fieldline model calibrate --input-size 320`" in detail
