"""FastAPI dependencies: the store, the ingest worker, services, bearer-token auth and role checks.

Tokens: the static ``Settings.api_tokens`` (service tokens, role admin) and login tokens from
``POST /auth/login`` (looked up by SHA-256), sent as ``Authorization: Bearer`` or, from pages, as the session
cookie set by ``POST /auth/session`` / ``GET /signin/{code}`` (``session_auth``; CSRF-checked by Origin). Missing or wrong token -> 401; a valid token whose role is too
low -> 403. Roles rank viewer < operator < admin; viewers may read everything and change nothing.
"""

from __future__ import annotations

import dataclasses
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud_api.api import session_auth
from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.services.alerts import AlertService
from cloud_api.services.harvest_plans import HarvestPlanService
from cloud_api.services.live import LiveHub
from cloud_api.services.sheds import ShedService
from cloud_api.services.users import ROLE_RANK, resolve_token
from cloud_api.storage.base import Store

_bearer = HTTPBearer(
    auto_error=False, description="A token from POST /api/v1/auth/login, or one of Settings.api_tokens"
)

SERVICE_USER = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in user or a static service token (role admin)."""

    username: str
    role: str
    kind: str  # "user" | "service"
    token: str
    via: str = "header"  # "header" (Authorization: Bearer) | "cookie" (a page's session)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_worker(request: Request) -> IngestWorker | None:
    return request.app.state.ingest


def get_hub(request: Request) -> LiveHub:
    return request.app.state.live


def get_shed_service(
    store: Annotated[Store, Depends(get_store)], settings: Annotated[Settings, Depends(get_settings)]
) -> ShedService:
    return ShedService(store, settings.pick_ready_labels, settings.pick_ready_labels_by_shed)


def get_alert_service(store: Annotated[Store, Depends(get_store)]) -> AlertService:
    return AlertService(store)


def get_harvest_service(
    store: Annotated[Store, Depends(get_store)],
    settings: Annotated[Settings, Depends(get_settings)],
    sheds: Annotated[ShedService, Depends(get_shed_service)],
) -> HarvestPlanService:
    return HarvestPlanService(store, settings, sheds)


def authenticate_token(settings: Settings, store: Store, token: str) -> Principal | None:
    """The principal behind a presented token, or None. Also used by the WebSocket route."""
    presented = token.encode("utf-8")
    # compare against every static token so timing does not reveal which one (or whether any) matched
    matched = False
    for static in settings.api_tokens:
        matched |= hmac.compare_digest(presented, static.encode("utf-8"))
    if matched:
        return Principal(username=SERVICE_USER, role="admin", kind="service", token=token)
    found = resolve_token(store, token) if token else None
    if found is None:
        return None
    user, _ = found
    return Principal(username=user.username, role=user.role, kind="user", token=token)


def require_token(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller by ``Authorization: Bearer`` or, for pages, by the session cookie (see ``session_auth``)."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token, via = credentials.credentials, "header"
    elif (cookie := session_auth.cookie_token(request)) is not None:
        token, via = cookie, "cookie"
    else:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token or session cookie", headers={"WWW-Authenticate": "Bearer"}
        )
    principal = authenticate_token(settings, store, token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token" if via == "header" else "session expired or signed out; sign in again",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if via == "cookie" and request.method not in session_auth.SAFE_METHODS and not session_auth.same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "cross-site request refused: a cookie-authenticated change needs an Origin header of this site")
    return dataclasses.replace(principal, via=via)


def _require_role(minimum: str):  # noqa: ANN202 - returns a FastAPI dependency
    def check(principal: Annotated[Principal, Depends(require_token)]) -> Principal:
        if ROLE_RANK[principal.role] < ROLE_RANK[minimum]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {minimum} or higher, you are {principal.role}")
        return principal

    check.__name__ = f"require_{minimum}"
    return check


require_operator = _require_role("operator")
require_admin = _require_role("admin")

StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkerDep = Annotated[IngestWorker | None, Depends(get_worker)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
ShedServiceDep = Annotated[ShedService, Depends(get_shed_service)]
AlertServiceDep = Annotated[AlertService, Depends(get_alert_service)]
HarvestServiceDep = Annotated[HarvestPlanService, Depends(get_harvest_service)]
PrincipalDep = Annotated[Principal, Depends(require_token)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
AdminDep = Annotated[Principal, Depends(require_admin)]
