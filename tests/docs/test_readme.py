"""The README is a short front door whose statements match the scripts, the CLI and the API they describe."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.docs.markdown_docs import REPO, commands, doc_files, fenced_blocks, rel, without_fences

README = REPO / "README.md"
# the API is served in-process (no port, no server start); Starlette's note about its httpx backend is not ours
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_the_readme_is_a_front_door_not_a_manual() -> None:
    assert len(readme().splitlines()) <= 120


def test_the_two_commands_are_there_exactly() -> None:
    blocks = [commands(b) for b in fenced_blocks(readme()) if b.lang == "bash"]
    assert ["bash scripts/demo.sh"] in blocks
    assert ["bash scripts/test.sh"] in blocks


def test_the_readme_names_exactly_the_debian_packages_the_test_script_installs() -> None:
    script = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    installed = set(re.search(r'^APT_PACKAGES="([^"]*)"', script, re.M)[1].split())
    assert "mosquitto" in installed
    spans = re.findall(r"`([^`]*)`", " ".join(without_fences(readme())))
    listed = [set(s.split()) for s in spans if "mosquitto" in s.split()]
    assert listed == [installed]


def test_the_python_version_is_the_one_the_package_and_setup_script_require() -> None:
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = re.fullmatch(r">=\s*(\d+)\.(\d+)", required).groups()
    assert f"Python {major}.{minor} or newer" in readme()
    assert f"sys.version_info < ({major}, {minor})" in (REPO / "scripts" / "setup.sh").read_text()


def test_the_demo_defaults_the_readme_names_are_the_cli_defaults() -> None:
    from typer.main import get_command

    from fieldline.cli import app

    params = {p.name: p.default for p in get_command(app).commands["demo"].params}
    text = readme()
    assert f"`{params['data_dir']}`" in text
    assert f"port {params['api_port']}" in text
    assert f"`{params['data_dir']}/demo.json`" in text


def test_relative_links_in_the_readme_point_at_files() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", " ".join(without_fences(readme())))
    local = [link for link in links if "://" not in link]
    assert local, "the README links to the docs pages and model cards"
    assert [link for link in local if not (REPO / link).exists()] == []


def _addresses() -> list[tuple[str, str]]:
    found = []
    for path in doc_files():
        for url in re.findall(r"http://127\.0\.0\.1:8000(/[^\s`'\")]*)", path.read_text(encoding="utf-8")):
            path_only = url.split("?")[0]
            if path_only and "…" not in path_only:  # /api/v1/… stands for any route
                found.append((rel(path), path_only))
    return sorted(set(found))


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from starlette.testclient import TestClient

    from cloud_api.core.config import Settings
    from cloud_api.main import create_app

    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), api_tokens=["docs-test-token-0123456789"],
                        ingest_enabled=False)
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_addresses_the_docs_send_you_to_are_served(api) -> None:
    addresses = _addresses()
    assert {"/", "/docs", "/qa", "/api/v1/sheds"} <= {a for _, a in addresses}
    missing = []
    for page, address in addresses:
        response = api.get(address, headers={"Authorization": "Bearer docs-test-token-0123456789"})
        if response.status_code == 404:
            missing.append(f"{page}: {address}")
    assert missing == []


def test_the_docs_pages_the_readme_lists_exist() -> None:
    pages = {Path(p).name for p in re.findall(r"\]\((docs/[\w-]+\.md)\)", readme())}
    on_disk = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages == on_disk


def test_the_routes_the_docs_name_exist(api) -> None:
    """``/api/v1/...`` paths written in the docs are routes of the app (templates compared as written)."""
    routes = set(api.app.openapi()["paths"])
    named = set()
    for path in doc_files():
        for span in re.findall(r"`(/api/v1/[^`\s?]*)`", " ".join(without_fences(path.read_text(encoding="utf-8")))):
            if "…" not in span:
                named.add((rel(path), span))
    assert len(named) >= 15
    websocket = {"/api/v1/ws"}  # not in the OpenAPI document: opened below
    assert [f"{page}: {span}" for page, span in sorted(named) if span not in routes | websocket] == []
    with api.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"type": "auth", "token": "docs-test-token-0123456789"})
        assert ws.receive_json()["ok"] is True
