"""The fleet pages: ``GET /fleet`` (one HTML page: devices, device, models, rollouts; hash routes).

Served with the QA dashboard's security headers; its script and styles live in the dashboard's static folder
(``/qa/static/fleet.*``, next to ``qa.css`` whose look it shares), so nothing comes from a CDN.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud_api.web.pages import page_response

router = APIRouter(tags=["fleet pages"])


@router.get("/fleet", response_class=HTMLResponse, summary="The fleet console (HTML page)",
            responses={200: {"content": {"text/html": {}}, "description": "Devices, models and rollouts"}})
def fleet_page() -> HTMLResponse:
    return page_response("fleet.html")
