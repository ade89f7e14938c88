from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from fieldline.config import ConfigError, load_config

VALID = """
device: gh-edge-01
site: farm
model: {path: model.onnx}
cameras:
  - name: cam-1
    source: {type: synthetic, seed: 3}
    zone: {kind: shed, id: shed-01}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, VALID), AgentConfig)
    assert cfg.cameras[0].source.type == "synthetic"
    assert cfg.cameras[0].zone.id == "shed-01"


def test_error_names_the_key_path(tmp_path):
    text = VALID.replace("kind: shed", "kind: barn")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), AgentConfig)
    assert "cameras[0].zone.kind" in str(info.value)
    assert "agent.yaml" in str(info.value)


def test_unknown_keys_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="cameras\\[0\\].colour: Extra inputs are not permitted"):
        load_config(write(tmp_path, VALID + "    colour: red\n"), AgentConfig)


def test_unknown_source_type_is_named(tmp_path):
    text = VALID.replace("type: synthetic, seed: 3", "type: webcam")
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.source"):
        load_config(write(tmp_path, text), AgentConfig)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    with pytest.raises(ConfigError, match="line 4, column 6"):
        load_config(write(tmp_path, "device: a\nsite: b\ncameras: [x\nmodel: 3\n"), AgentConfig)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml", AgentConfig)


def test_env_overrides_apply(tmp_path):
    cfg = load_config(write(tmp_path, VALID), AgentConfig,
                      environ={"FIELDLINE__MQTT__HOST": "broker.lan", "FIELDLINE__MQTT__PORT": "8883"})
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("broker.lan", 8883)


def test_duplicate_camera_names_rejected(tmp_path):
    text = VALID + """  - name: cam-1
    source: {type: synthetic}
    zone: {id: shed-02}
"""
    with pytest.raises(ConfigError, match="repeated: cam-1"):
        load_config(write(tmp_path, text), AgentConfig)
