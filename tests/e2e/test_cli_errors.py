"""Bad input at the command line: one clear message naming the file, key or source, and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_api import free_port

MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def fieldline(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fieldline.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def agent_yaml(tmp_path: Path, model: Path, source: str, port: int = 1) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"""
device: dev-1
site: farm
data_dir: {tmp_path / 'edge'}
mqtt: {{host: 127.0.0.1, port: {port}}}
model: {{path: {model}}}
cameras:
  - name: cam-1
    source: {source}
    zone: {{kind: shed, id: shed-01}}
""")
    return path


def test_missing_config_file(tmp_path):
    result = fieldline("edge", "run", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml: config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_config_names_the_key(tmp_path):
    path = agent_yaml(tmp_path, MODEL, "{type: synthetic, seed: -1, width: 5}")
    result = fieldline("config", "validate", str(path))
    assert result.returncode == 1
    assert "cameras[0].source.synthetic.width" in result.stderr or "cameras[0].source.width" in result.stderr


def test_valid_config_validates(tmp_path):
    result = fieldline("config", "validate", str(agent_yaml(tmp_path, MODEL, "{type: synthetic}")))
    assert result.returncode == 0, result.stderr
    assert "valid edge config" in result.stdout


@pytest.mark.parametrize("content", [None, b"this is not an onnx model"])
def test_missing_or_corrupt_model(tmp_path, content):
    model = tmp_path / "broken.onnx"
    if content is not None:
        model.write_bytes(content)
    result = fieldline("edge", "run", "--config", str(agent_yaml(tmp_path, model, "{type: synthetic}")))
    assert result.returncode == 2
    assert "broken.onnx" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_video_is_named(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 1024)
    result = fieldline("edge", "run", "--config", str(agent_yaml(tmp_path, MODEL, f"{{type: video, path: {video}}}")))
    assert result.returncode == 2
    assert "clip.mp4" in result.stderr
    assert "no camera could be opened" in result.stderr


def test_unreachable_broker_keeps_the_agent_running_and_spooling(tmp_path):
    port = free_port()  # nothing listens here
    path = agent_yaml(tmp_path, MODEL, "{type: synthetic, seed: 5}", port=port)
    result = fieldline("edge", "run", "--config", str(path), "--duration", "4")
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{port} unreachable" in result.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "edge" / "spool.db") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] >= 1


def test_contract_and_config_schema_commands():
    import json

    contract = json.loads(fieldline("contract", "schema").stdout)
    assert "event" in contract
    schema = json.loads(fieldline("config", "schema", "--kind", "edge").stdout)
    assert "cameras" in schema["properties"]
