"""The API reference pages work with no internet: /docs (Swagger UI) and /redoc (ReDoc) load only from the API.

Plain tests check every HTML page the app serves, and every file of its static mounts, for references to
other hosts; a headless Chromium (the shared fixture of the QA dashboard test) renders both pages and
records every request and every request the page's Content-Security-Policy refused. The test machine has
no internet, so a CDN reference would also leave the page blank. Leaves test-artifacts/docs_swagger.png
and test-artifacts/docs_redoc.png.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from cloud_api.web.docs import VENDOR_DIR
from tests.cloud_api.cloudapi_builders import ApiServer, settings_for, wait_until
from tests.cloud_api.test_qa_dashboard_browser import ARTIFACTS, driver  # noqa: F401 - the shared browser

URL = re.compile(r"""https?://[A-Za-z0-9.-]+(?::\d+)?[^\s"'`)<>]*""")
# identifiers, not addresses: the browser never loads them
XML_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml"}
CDN_HOST = re.compile(r"(^|\.)(cdn|unpkg|jsdelivr|cdnjs|googleapis|gstatic|bootstrapcdn|cloudflare)", re.IGNORECASE)
# The only CDN address inside the vendored bundles: ReDoc 2.x's sidebar logo, refused by the page's policy
KNOWN_VENDOR_CDN_HOSTS = {"cdn.redoc.ly"}
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
TEXT_SUFFIXES = {".html", ".js", ".css", ".mjs", ".svg"}

RECORDER = """
window.__blocked = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__blocked.push([e.effectiveDirective, e.blockedURI]), true);
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path_factory.mktemp("docs"))) as server:
        yield server


def _host(api: ApiServer) -> str:
    return urlsplit(api.root).netloc


def _external(urls: list[str], own_host: str) -> set[str]:
    """The URLs of ``urls`` that point at another host."""
    return {url for url in urls if url.rstrip("/") not in XML_NAMESPACES and urlsplit(url).netloc != own_host}


def _html_pages(api: ApiServer) -> dict[str, str]:
    """Every page the app serves as HTML: the documented text/html operations, the landing page (if any)
    and the API reference pages (left out of the OpenAPI document)."""
    doc = httpx.get(f"{api.root}/openapi.json", timeout=10).json()
    paths = {"/", "/docs", "/redoc"} | {
        path for path, item in doc["paths"].items() if "{" not in path
        and "text/html" in item.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
    }
    pages = {}
    for path in sorted(paths):
        response = httpx.get(api.root + path, timeout=10)
        if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
            pages[path] = response.text
    return pages


def _static_files(api: ApiServer) -> dict[Path, str]:
    """Text files (HTML/JS/CSS/SVG) of every StaticFiles mount of the app."""
    files = {}
    for route in api.server.config.app.routes:
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            directory = Path(str(route.app.directory))
            for path in directory.rglob("*"):
                if path.suffix in TEXT_SUFFIXES:
                    files[path] = path.read_text(encoding="utf-8", errors="replace")
    return files


def test_vendored_assets_match_their_checksums_and_carry_licences() -> None:
    listed = {}
    for line in (VENDOR_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.glob("*/*") if p.is_file()}
    assert present == set(listed), "vendor/ and SHA256SUMS disagree: re-run sha256sum (see vendor/README.md)"
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, f"{name} changed"
    assert {"swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"} <= present


def test_no_served_page_or_script_references_another_host(api: ApiServer) -> None:
    own = _host(api)
    pages = _html_pages(api)
    assert {"/docs", "/redoc", "/qa"} <= set(pages), sorted(pages)
    for path, html in pages.items():
        assert not _external(URL.findall(html), own), f"{path} references another host"
        for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html):
            assert urlsplit(urljoin(api.root + path, ref)).netloc == own, f"{path} loads {ref}"

    files = _static_files(api)
    assert any(p.name == "qa.js" for p in files) and any(p.name == "swagger-ui-bundle.js" for p in files)
    vendor_cdn_hosts = set()
    for path, text in files.items():
        urls = URL.findall(text)
        if VENDOR_DIR in path.parents:
            # third-party bundles mention many URLs (docs links, JSON-schema ids); CDN hosts are what matter
            hosts = {urlsplit(url).netloc for url in _external(urls, own)}
            vendor_cdn_hosts |= {host for host in hosts if CDN_HOST.search(host)}
        else:
            assert not _external(urls, own), f"{path} references another host"
    assert vendor_cdn_hosts == KNOWN_VENDOR_CDN_HOSTS, (
        "the vendored bundles' CDN addresses changed: check the new one is refused by the docs pages' "
        "Content-Security-Policy, then update KNOWN_VENDOR_CDN_HOSTS")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_allow_only_their_own_origin(api: ApiServer, path: str) -> None:
    response = httpx.get(api.root + path, timeout=10)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    allowed = re.compile(r"^('self'|'none'|'unsafe-inline'|data:|blob:|'sha256-[A-Za-z0-9+/=]+')$")
    for name, sources in directives.items():
        for source in sources.split():
            assert allowed.match(source), f"{path}: {name} allows {source}"
    assets = httpx.get(f"{api.root}/docs/assets/swagger-ui/swagger-ui-bundle.js", timeout=10)
    assert assets.status_code == 200 and assets.headers["content-type"].startswith("text/javascript")


def _operations(api: ApiServer) -> dict[tuple[str, str], dict[str, Any]]:
    doc = httpx.get(f"{api.root}/openapi.json", timeout=10).json()
    return {(path, method): op for path, item in doc["paths"].items() for method, op in item.items()}


def _resources(browser: Any) -> list[str]:
    return browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")


def test_swagger_ui_and_redoc_render_every_operation_offline(api: ApiServer, driver: Any) -> None:  # noqa: F811
    operations = _operations(api)
    devices = operations[("/api/v1/devices", "get")]
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
    ARTIFACTS.mkdir(exist_ok=True)

    # Swagger UI: one block per operation; the devices block opens and offers "Try it out"
    driver.get(f"{api.root}/docs")
    blocks = sum(len(op.get("tags") or [None]) for op in operations.values())  # one block per tag it has
    wait_until(lambda: driver.execute_script("return document.querySelectorAll('.opblock').length")
               == blocks, 30, f"Swagger UI to list {len(operations)} operations in {blocks} blocks")
    block = "document.querySelector(\".opblock-summary-path[data-path='/api/v1/devices']\").closest('.opblock')"
    assert "opblock-get" in driver.execute_script(f"return {block}.className")
    assert driver.execute_script(f"return {block}.querySelector('.opblock-summary-description').textContent") \
        == devices["summary"]
    driver.execute_script(f"{block}.querySelector('.opblock-summary-control').click()")
    wait_until(lambda: driver.execute_script(f"return {block}.querySelector('.try-out__btn') !== null"), 10,
               "the devices operation to open")
    assert driver.execute_script("return window.__blocked") == []
    assert all(url.startswith(api.root + "/") for url in _resources(driver)), _resources(driver)
    assert f"{api.root}/openapi.json" in _resources(driver)
    driver.save_screenshot(str(ARTIFACTS / "docs_swagger.png"))

    # ReDoc: one section per operation and tag, the devices one with its path; only the vendor logo was refused
    driver.get(f"{api.root}/redoc")
    wait_until(lambda: driver.execute_script(
        "return document.querySelectorAll('[data-section-id^=\"operation/\"]').length") == blocks, 30,
        f"ReDoc to list {len(operations)} operations in {blocks} sections")
    selector = f"[data-section-id='operation/{devices['operationId']}']"
    section = driver.execute_script("return document.querySelector(arguments[0]).textContent", selector)
    assert devices["summary"] in section and "/api/v1/devices" in section
    assert driver.execute_script("return window.__blocked") == [["img-src", REDOC_LOGO]]
    fetched = [url for url in _resources(driver) if url != REDOC_LOGO]
    assert all(url.startswith(api.root + "/") for url in fetched), fetched
    driver.save_screenshot(str(ARTIFACTS / "docs_redoc.png"))
