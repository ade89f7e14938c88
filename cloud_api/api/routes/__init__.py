"""All /api/v1 routers; everything except health, login and the WebSocket (own token check) needs a token."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloud_api.api.deps import require_token
from cloud_api.api.routes import fleet_commands, fleet_configs, fleet_deployments, fleet_models
from cloud_api.api.routes import alerts, auth, dead_letters, devices, events, harvest, health, live, sheds
from cloud_api.api.routes import climate, device_credentials, forecast, lines, qa, sessions
from cloud_api.api.routes import datasets


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    router.include_router(health.router)
    router.include_router(auth.router)
    router.include_router(sessions.router)  # POST /auth/session: a page's cookie sign-in
    router.include_router(live.router)
    router.include_router(fleet_models.download)  # a device's download token or a user's
    protected = APIRouter(dependencies=[Depends(require_token)])
    protected.include_router(auth.protected)
    protected.include_router(sessions.protected)  # sign-in links, token list and revocation
    protected.include_router(device_credentials.router)  # before devices: /devices/credentials (admin)
    protected.include_router(devices.router)
    protected.include_router(sheds.router)
    protected.include_router(events.router)
    protected.include_router(alerts.router)
    protected.include_router(harvest.router)
    protected.include_router(dead_letters.router)
    protected.include_router(lines.router)
    protected.include_router(qa.router)
    protected.include_router(fleet_models.router)
    protected.include_router(fleet_commands.router)  # also runs the command dispatcher (router lifespan)
    protected.include_router(fleet_configs.router)  # config versions (rolled out by deployments)
    protected.include_router(fleet_deployments.router)  # also runs the deployment engine (router lifespan)
    protected.include_router(climate.router)
    protected.include_router(forecast.router)
    protected.include_router(datasets.router)  # learning-loop datasets (issue 40); dataset changes on the WebSocket
    router.include_router(protected)
    return router
