"""The labelling page: ``GET /label`` (one HTML page: dataset picker, box editor, keyboard shortcuts).

Served with the QA dashboard's security headers, like ``/fleet``; its script and styles live in the dashboard's
static folder (``/qa/static/label.*``) and its canvas library (Konva, MIT) in ``vendor/konva``, served under
``/docs/assets``: nothing comes from a CDN. All data goes through the datasets API (``/api/v1/datasets``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud_api.web.pages import page_response

router = APIRouter(tags=["label page"])


@router.get("/label", response_class=HTMLResponse, summary="The labelling page (HTML page)",
            responses={200: {"content": {"text/html": {}}, "description": "Label dataset frames"}})
def label_page() -> HTMLResponse:
    return page_response("label.html")
