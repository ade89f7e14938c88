"""The QA dashboard: ``GET /qa`` (one HTML page) and its static files under ``/qa/static``.

Everything the page needs (script, styles, chart code) is served from this package: factories are often
offline, so nothing comes from a CDN. The page itself holds no data; it signs in through
``POST /api/v1/auth/session`` (or a one-time ``/signin/{code}`` link for kiosks), which set an HttpOnly session
cookie (``cloud_api.api.session_auth``), and reads the JSON API with that cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from cloud_api.web import fleet_page, label_page, training_page
from cloud_api.web.pages import page_response

STATIC_DIR = Path(__file__).parent / "static"

# the page loads only its own files; images are blob: URLs fetched with the session cookie
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(tags=["qa dashboard"])


@router.get("/qa", response_class=HTMLResponse, summary="The factory QA dashboard (HTML page)",
            responses={200: {"content": {"text/html": {}}, "description": "The dashboard page"}})
def dashboard() -> HTMLResponse:
    return page_response("qa.html")


def mount_dashboard(app: FastAPI) -> None:
    """Add ``/qa`` and ``/qa/static`` to the app."""
    app.include_router(router)
    app.include_router(fleet_page.router)  # /fleet: the fleet console, same static folder and look
    app.include_router(label_page.router)  # /label: the labelling page, same static folder and look
    app.include_router(training_page.router)  # /training: start and watch training jobs, same look
    app.mount("/qa/static", StaticFiles(directory=STATIC_DIR), name="qa-static")
