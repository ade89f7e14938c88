"""FastAPI dependencies: the store, the ingest worker, services and bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.services.sheds import ShedService
from cloud_api.storage.base import Store

_bearer = HTTPBearer(auto_error=False, description="One of the tokens in Settings.api_tokens")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_worker(request: Request) -> IngestWorker | None:
    return request.app.state.ingest


def get_shed_service(store: Annotated[Store, Depends(get_store)]) -> ShedService:
    return ShedService(store)


def require_token(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    presented = credentials.credentials.encode("utf-8")
    # compare against every token so timing does not reveal which one (or whether any) matched
    matched = False
    for token in settings.api_tokens:
        matched |= hmac.compare_digest(presented, token.encode("utf-8"))
    if not matched:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


StoreDep = Annotated[Store, Depends(get_store)]
WorkerDep = Annotated[IngestWorker | None, Depends(get_worker)]
ShedServiceDep = Annotated[ShedService, Depends(get_shed_service)]
