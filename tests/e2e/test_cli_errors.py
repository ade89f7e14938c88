"""Bad input at the command line: one clear message naming the file, key or source, and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live_api import free_port

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def fieldline(*args: str, timeout: float = 60, cwd: Path | None = None,
              python: tuple[str, ...] = ("-m", "fieldline.cli")) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE__")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *python, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


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


# ---------------------------------------------------------------- config validate: kind, missing files, paths

API_YAML = "data_dir: state\nmqtt_host: 127.0.0.1\napi_tokens: [t0ken]\n"


def test_validate_tells_an_api_config_by_its_keys(tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(API_YAML)
    result = fieldline("config", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "valid api config (told by its keys)" in result.stdout


def test_validate_api_config_as_edge_says_to_use_kind_api(tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(API_YAML)
    result = fieldline("config", "validate", "--kind", "edge", str(path))
    assert result.returncode == 1
    assert "api_tokens: Extra inputs are not permitted" in result.stderr
    assert "use --kind api" in result.stderr


def test_validate_cannot_tell_the_kind_says_so(tmp_path):
    path = tmp_path / "state.yaml"
    path.write_text("data_dir: somewhere\n")  # a key both kinds have
    result = fieldline("config", "validate", str(path))
    assert result.returncode == 2
    assert "use --kind edge or --kind api" in result.stderr and "Traceback" not in result.stderr


def test_validate_reports_a_missing_model_with_its_full_path(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "agent.yaml"
    path.write_text(agent_yaml(tmp_path, Path("models/absent.onnx"), "{type: synthetic}").read_text())
    result = fieldline("config", "validate", str(path), cwd=tmp_path)  # relative to etc/, not to the cwd
    assert result.returncode == 1
    assert f"model.path: {folder / 'models' / 'absent.onnx'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_relative_paths_run_from_any_working_directory(tmp_path):
    """Model and data_dir relative to the config file; the agent runs from another folder and its spool lands
    next to the config."""
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    model = Path(os.path.relpath(MODEL, folder))
    path = folder / "agent.yaml"
    path.write_text(agent_yaml(tmp_path, model, "{type: synthetic, seed: 5}", port=free_port()).read_text()
                    .replace(f"data_dir: {tmp_path / 'edge'}", "data_dir: state"))
    validated = fieldline("config", "validate", "agent.yaml", cwd=folder)
    assert validated.returncode == 0, validated.stderr
    result = fieldline("edge", "run", "--config", str(path), "--duration", "3", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (folder / "state" / "spool.db").is_file()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(("example", "kind"), [("edge-greenhouse.yaml", "edge"), ("api.yaml", "api")])
def test_deploy_examples_validate_from_another_folder(tmp_path, example, kind):
    result = fieldline("config", "validate", str(REPO / "deploy" / "examples" / example), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"valid {kind} config" in result.stdout


# ---------------------------------------------------------------- fieldline app without the app extra

# Kivy is installed in the test environment, so "not installed" is simulated: this wrapper puts an import
# blocker first on sys.meta_path (every `import kivy...` raises ModuleNotFoundError, as without the package),
# then runs the real CLI.
NO_KIVY = """
import sys
class NoKivy:
    def find_spec(self, name, path=None, target=None):
        if name == "kivy" or name.startswith("kivy."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, NoKivy())
sys.argv[0] = "fieldline"
from fieldline.cli import main
main()
"""


def test_app_without_kivy_says_how_to_install_it():
    result = fieldline("app", "--api", "http://127.0.0.1:9", python=("-c", NO_KIVY))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "pip install 'fieldline[app]'" in lines[0] and "kivy not installed" in lines[0]


def test_app_with_kivy_gets_past_the_check():
    """Without the blocker the command reaches the next check (the language): the one above fails because of
    the blocked import, not for another reason."""
    result = fieldline("app", "--lang", "fr")
    assert result.returncode == 2
    assert "--lang must be en or zh, not 'fr'" in result.stderr and "app extra" not in result.stderr
