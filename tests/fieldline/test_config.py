import re
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from fieldline.config import ConfigError, guess_kind, load_config

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


# ---------------------------------------------------------------- relative paths: from the config file's folder

RELATIVE = """
device: gh-edge-01
site: farm
data_dir: state
mqtt: {tls: {ca_file: certs/ca.pem}}
model: {type: yolov8, path: ../models/det.onnx, labels: labels.txt}
cameras:
  - name: cam-1
    source: {type: folder, path: frames}
    zone: {id: shed-01}
  - name: cam-2
    source: {type: video, path: clips/a.mp4}
    zone: {id: shed-02}
  - name: cam-3
    source: {type: video, path: "rtsp://10.0.0.5/stream"}
    zone: {id: shed-03}
"""


def test_relative_paths_are_read_from_the_config_folder_not_the_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "etc" / "edge"
    folder.mkdir(parents=True)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (folder / "agent.yaml").write_text(RELATIVE)
    cfg = load_config(Path("../etc/edge/agent.yaml"), AgentConfig)  # itself given relative to the cwd
    assert cfg.data_dir == folder / "state"
    assert cfg.mqtt.tls.ca_file == folder / "certs" / "ca.pem"
    assert cfg.model.path == tmp_path / "etc" / "models" / "det.onnx"  # normalised, no ".."
    assert cfg.model.labels == folder / "labels.txt"
    assert cfg.cameras[0].source.path == folder / "frames"
    assert cfg.cameras[1].source.path == str(folder / "clips" / "a.mp4")
    assert cfg.cameras[2].source.path == "rtsp://10.0.0.5/stream"


def test_absolute_paths_and_label_lists_are_kept(tmp_path):
    text = RELATIVE.replace("data_dir: state", "data_dir: /var/lib/fieldline/edge").replace(
        "labels: labels.txt", "labels: [ripe, green]")
    cfg = load_config(write(tmp_path, text), AgentConfig)
    assert cfg.data_dir == Path("/var/lib/fieldline/edge")
    assert cfg.model.labels == ["ripe", "green"]


def test_a_config_built_in_code_keeps_relative_paths():
    """fieldline.demo and the tests build AgentConfig without a file: there is no folder to resolve from."""
    cfg = AgentConfig.model_validate({"device": "d", "site": "s", "data_dir": "state", "model": {"path": "m.onnx"},
                                      "cameras": [{"name": "c", "source": {"type": "synthetic"}, "zone": {"id": "z"}}]})
    assert cfg.data_dir == Path("state") and cfg.model.path == Path("m.onnx")


def test_api_settings_paths_are_read_from_the_config_folder(tmp_path, monkeypatch):
    from cloud_api.core.config import Settings

    (tmp_path / "ca.pem").write_text("not checked here, only that it is a file")
    path = tmp_path / "api.yaml"
    path.write_text("data_dir: state\nmqtt_tls_ca_file: ca.pem\n")
    monkeypatch.chdir(tmp_path.parent)
    settings = load_config(path, Settings)
    assert settings.data_dir == tmp_path / "state"
    assert settings.database_file == tmp_path / "state" / "fieldline.db"
    assert settings.mqtt_tls_ca_file == tmp_path / "ca.pem"
    path.write_text("db_path: db/main.db\nmqtt_tls_ca_file: certs/absent.pem\n")
    absent = tmp_path / "certs" / "absent.pem"
    with pytest.raises(ConfigError, match=re.escape(f"mqtt_tls_ca_file: {absent} is not a readable file")):
        load_config(path, Settings)


def test_missing_config_file_shows_the_full_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{tmp_path / 'conf' / 'agent.yaml'}: config file not found")):
        load_config(Path("conf/agent.yaml"), AgentConfig)


def test_missing_files_name_the_key_and_the_full_path(tmp_path):
    folder = tmp_path / "edge"
    folder.mkdir()
    cfg = load_config(write(folder, RELATIVE), AgentConfig)
    assert cfg.missing_files() == [
        f"model.path: {tmp_path / 'models' / 'det.onnx'} does not exist",
        f"model.labels: {folder / 'labels.txt'} does not exist",
        f"mqtt.tls.ca_file: {folder / 'certs' / 'ca.pem'} does not exist",
        f"cameras[0].source.path: {folder / 'frames'} does not exist",
        f"cameras[1].source.path: {folder / 'clips' / 'a.mp4'} does not exist",
    ]  # the rtsp stream is not a file
    for made in (tmp_path / "models" / "det.onnx", folder / "labels.txt", folder / "certs" / "ca.pem",
                 folder / "clips" / "a.mp4"):
        made.parent.mkdir(exist_ok=True)
        made.write_bytes(b"x")
    (folder / "frames").write_bytes(b"a file where a folder belongs")
    assert cfg.missing_files() == [f"cameras[0].source.path: {folder / 'frames'} is not a folder"]


def test_guess_kind_by_keys_only_one_kind_has():
    from cloud_api.core.config import Settings

    models = {"edge": AgentConfig, "api": Settings}
    assert guess_kind({"device": "d", "cameras": [], "data_dir": "x"}, models) == "edge"
    assert guess_kind({"api_tokens": ["t"], "data_dir": "x"}, models) == "api"
    assert guess_kind({"data_dir": "x"}, models) is None  # both kinds have data_dir
    assert guess_kind({"device": "d", "api_tokens": ["t"]}, models) is None
    assert guess_kind({}, models) is None
