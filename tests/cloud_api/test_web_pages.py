"""The four signed-in pages (/qa, /fleet, /label, /training) as the real API serves them: one shared sign-in form
put in by the server, the shared signin.js before the page's own script, no inline script, the pages' policy;
and GET /training/base-models, the base models the /training page offers (the one in service first)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from cloud_api.web.signin import with_signin
from fieldline.contract import DeviceStatus, ModelRef
from tests.cloud_api.cloudapi_builders import ApiServer, settings_for

PAGES = {"/qa": "QA", "/fleet": "Fleet", "/label": "Label", "/training": "Training"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path_factory.mktemp("pages"))) as server:
        yield server


@pytest.mark.parametrize("path", PAGES)
def test_each_page_has_the_shared_sign_in_and_no_inline_script(api: ApiServer, path: str) -> None:
    response = httpx.get(f"{api.root}{path}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.count('id="login-form"') == 1 and page.count('id="login-user"') == 1
    assert f"<h1>FieldLine <span>{PAGES[path]}</span></h1>" in page  # the form's title and the top bar's
    assert "<!-- signin" not in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    own = f"/qa/static/{path.strip('/')}.js"
    assert "/qa/static/signin.js" in scripts and scripts.index("/qa/static/signin.js") < scripts.index(own)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page, re.I)
    assert not re.search(r"\son[a-z]+\s*=", page, re.I)
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert httpx.get(f"{api.root}/qa/static/signin.js").status_code == 200


def test_training_is_linked_from_label_fleet_and_home(api: ApiServer) -> None:
    for path in ("/label", "/fleet", "/"):
        assert 'href="/training"' in httpx.get(f"{api.root}{path}").text, path


def test_a_page_without_the_sign_in_mark_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"broken.html: needs exactly one <!-- signin"):
        with_signin("<body></body>", "broken.html")
    assert 'lead="x"' not in with_signin('<!-- signin title="A &amp; B" lead="x" -->')


def test_base_models_put_the_model_in_service_first(api: ApiServer) -> None:
    bases = api.get("/training/base-models")
    names = [b["base_model"] for b in bases]
    assert "tomato-ripeness" in names and "steel-defect" in names
    assert not any(n.endswith(".int8") or n == "surface-anomaly" for n in names)  # INT8 and anomaly: not bases
    tomato = next(b for b in bases if b["base_model"] == "tomato-ripeness")
    assert tomato["labels"] == ["green", "half_ripe", "ripe"] and tomato["source"] == "zoo"
    store = api.server.config.app.state.store
    for i in range(2):
        store.write_status(DeviceStatus(state="online", device=f"cam-{i}", site="farm", ts_ms=1_765_000_000_000,
                                        model=ModelRef(name=tomato["name"], version=tomato["version"],
                                                       sha256="0" * 64)), 1_765_000_000_000)
    first = api.get("/training/base-models")[0]
    assert (first["base_model"], first["devices"]) == ("tomato-ripeness", 2)
