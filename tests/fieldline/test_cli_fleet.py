"""``fieldline model push`` against the real API over HTTP (in-process uvicorn, real SQLite)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from fieldline.cli import app
from fieldline.cli_fleet import sibling
from tests.cloud_api.cloudapi_builders import TOKEN, ApiServer, settings_for

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"


def test_push_uploads_the_file_with_the_card_next_to_it_and_reports_refusals(tmp_path):
    model = ZOO / "steel-defect.int8.onnx"
    assert sibling(model, ".card.md") == ZOO / "steel-defect.card.md"
    runner = CliRunner()
    with ApiServer(settings_for(tmp_path)) as api:
        result = runner.invoke(app, ["model", "push", str(model), "--api", api.root, "--token", TOKEN])
        assert result.exit_code == 0, result.output
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        assert f"sha256 {sha}" in result.output and "registered: steel-defect 1.2.1" in result.output
        stored = api.get(f"/models/{sha}")
        assert stored["card"] == (ZOO / "steel-defect.card.md").read_text()
        assert stored["figures"]["variant"] == "int8"

        again = runner.invoke(app, ["model", "push", str(model), "--api", api.root, "--token", TOKEN])
        assert again.exit_code == 0 and "already registered" in again.output

        corrupt = tmp_path / "broken.onnx"
        corrupt.write_bytes(b"\x08\x01garbage" * 50)
        refused = runner.invoke(app, ["model", "push", str(corrupt), "--api", api.root, "--token", TOKEN])
        assert refused.exit_code == 2
        assert "HTTP 422" in refused.output and "not an ONNX file" in refused.output

        wrong_token = runner.invoke(app, ["model", "push", str(model), "--api", api.root, "--token", "nope"])
        assert wrong_token.exit_code == 2 and "HTTP 401" in wrong_token.output
