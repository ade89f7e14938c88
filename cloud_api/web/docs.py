"""The API reference pages, ``GET /docs`` (Swagger UI) and ``GET /redoc`` (ReDoc), with no CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on an offline factory network they stay blank.
These pages load the same programs from ``vendor/`` (npm ``swagger-ui-dist`` and ``redoc``, with their
licences; versions and checksums in ``vendor/README.md``), served under ``/docs/assets``.

Each page carries a Content-Security-Policy that lets it load only from this server: ReDoc's sidebar
shows a logo from its vendor's CDN, and the policy stops the browser from even asking for it. Neither page
has an inline script: Swagger UI's start-up script is served as ``/docs/swagger-init.js``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

VENDOR_DIR = Path(__file__).parent / "vendor"
ASSETS_PATH = "/docs/assets"
SWAGGER_JS = "swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui/swagger-ui.css"
REDOC_JS = "redoc/redoc.standalone.js"
FAVICON = "swagger-ui/favicon-32x32.png"
SWAGGER_INIT_PATH = "/docs/swagger-init.js"

# Swagger UI's default validator badge would send the spec's URL to an outside service
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def content_security_policy(html: str) -> str:
    """A policy for ``html`` allowing only this origin, plus the page's own inline scripts by hash.

    Inline styles stay allowed: ReDoc (styled-components) injects ``<style>`` elements at run time.
    ReDoc's search runs in a Web Worker made from a ``blob:`` URL.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    script_src = f"script-src 'self' {hashes}".rstrip()
    return (
        f"default-src 'self'; {script_src}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    )


def without_inline_scripts(html: str, src: str) -> tuple[str, str]:
    """(the page with its inline scripts replaced by one ``<script src=src>``, their code joined)."""
    bodies = _INLINE_SCRIPT.findall(html)
    page = _INLINE_SCRIPT.sub("", html, count=len(bodies))
    if bodies:
        page = page.replace("</body>", f'<script src="{src}"></script>\n</body>', 1)
    return page, "\n".join(bodies)


def _secured(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode("utf-8")
    return HTMLResponse(html, headers={
        "Content-Security-Policy": content_security_policy(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })


def _root(request: Request) -> str:
    """The mount prefix when served behind a proxy with ``root_path``, else ""."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """``/docs`` and ``/redoc`` for the OpenAPI document at ``openapi_url`` (left out of the document)."""
    router = APIRouter(include_in_schema=False)

    def swagger_page(root: str) -> tuple[str, str]:
        return without_inline_scripts(bytes(get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow to come back from
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        ).body).decode("utf-8"), root + SWAGGER_INIT_PATH)

    @router.get("/docs", response_class=HTMLResponse)
    def swagger_ui(request: Request) -> HTMLResponse:
        return _secured(HTMLResponse(swagger_page(_root(request))[0]))

    @router.get(SWAGGER_INIT_PATH)
    def swagger_init(request: Request) -> Response:
        return Response(swagger_page(_root(request))[1], media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return _secured(get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            with_google_fonts=False,
        ))

    return router


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and ``/docs/assets`` to an app built with ``docs_url=None, redoc_url=None``."""
    if app.openapi_url is None:
        raise ValueError("mount_docs needs the app's OpenAPI document: create the app with an openapi_url")
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError("create the app with docs_url=None and redoc_url=None: FastAPI's own pages load a CDN")
    app.include_router(docs_router(app.openapi_url, app.title))
    app.mount(ASSETS_PATH, StaticFiles(directory=VENDOR_DIR), name="docs-assets")
