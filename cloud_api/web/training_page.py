"""The training page: ``GET /training`` (one HTML page: start a training job on a dataset, watch it live, cancel
it, read the result and roll the registered model out from ``/fleet``).

Served like ``/label`` and ``/fleet`` (the shared sign-in form, the dashboard's security headers); its script and
styles live in the dashboard's static folder (``/qa/static/training.*``): nothing comes from a CDN. All data goes
through the training, datasets and models APIs; progress arrives on the live WebSocket (``type: training``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud_api.web.pages import page_response

router = APIRouter(tags=["training page"])


@router.get("/training", response_class=HTMLResponse, summary="The training page (HTML page)",
            responses={200: {"content": {"text/html": {}}, "description": "Start and watch training jobs"}})
def training_page() -> HTMLResponse:
    return page_response("training.html")
