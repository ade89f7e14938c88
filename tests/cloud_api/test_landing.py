"""``GET /``: the home page links the QA dashboard, the API docs and health, names this server for the phone
app, loads nothing from elsewhere, and escapes the Host header it echoes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from cloud_api.core.config import Settings
from cloud_api.web.landing import render_home
from tests.support.live_api import LiveApi


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.styles: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))
        if tag == "link" and values.get("rel") == "stylesheet":
            self.styles.append(str(values["href"]))
        if tag == "script":
            self.scripts += 1


def links(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    data: Path = tmp_path_factory.mktemp("landing")
    with LiveApi(Settings(data_dir=data, api_tokens=["t"], ingest_enabled=False)) as live:
        yield live


def test_home_page_links_every_entry_point_and_each_link_answers(api: LiveApi) -> None:
    page = httpx.get(f"{api.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    found = links(page.text)
    assert {"/qa", "/docs", "/api/v1/health"} <= set(found.hrefs)
    for href in found.hrefs:  # no dead link: every page the home page offers is served by this app
        assert httpx.get(f"{api.url}{href}", timeout=10).status_code == 200, href
    assert f"fieldline app --api {api.url}" in page.text  # the phone app command names this server


def test_home_page_is_self_contained_and_looks_like_the_dashboard(api: LiveApi) -> None:
    page = httpx.get(f"{api.url}/", timeout=10)
    found = links(page.text)
    assert "/qa/static/qa.css" in found.styles  # the dashboard's own style sheet
    for href in found.styles:
        css = httpx.get(f"{api.url}{href}", timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["content-type"], href
        assert re.findall(r"https?://", css.text) == [], f"{href} loads remote resources"
    assert found.scripts == 0
    remote = [u for u in re.findall(r"https?://[^\s\"'<]+", page.text) if not u.startswith(api.url)]
    assert remote == [], f"the home page refers to other servers: {remote}"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy and "script-src" not in policy


def test_host_header_never_reaches_the_page_unescaped(api: LiveApi) -> None:
    page = httpx.get(f"{api.url}/", headers={"Host": 'evil"><b>x</b>'}, timeout=10)
    assert page.status_code == 200 and "<b>" not in page.text
    rendered = render_home('http://evil"><b>x</b>')  # what the page gets whatever the server parses
    assert "<b>" not in rendered and "http://evil&quot;&gt;&lt;b&gt;x&lt;/b&gt;" in rendered
