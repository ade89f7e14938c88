"""Wiring of the fleet parts into the app: the command dispatcher's lifespan and the route dependencies.

The dispatcher runs inside the app's lifespan (a router lifespan: FastAPI enters it after the app's own, so the
store is open and the ingest worker exists, and leaves it before them). Without the ingest worker
(``ingest_enabled: false``) there is no MQTT connection here: the dispatcher only records time-outs, and
commands wait in the shared database for a worker that has the connection (see ``fleet.commands``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request

from cloud_api.fleet.commands import CommandDispatcher, CommandStore
from cloud_api.fleet.records import AuditRecord, CommandRecord
from cloud_api.fleet.registry import ModelRegistry, RegistryStore


class FleetStore(CommandStore, RegistryStore, Protocol):
    def list_commands(self, site: str, device: str, limit: int = 100) -> list[CommandRecord]: ...

    def add_audit(self, entry: AuditRecord) -> int: ...

    def list_audit(self, *, target_kind: str | None = None, target: str | None = None, actor: str | None = None,
                   before_id: int | None = None, limit: int = 100) -> list[AuditRecord]: ...


@asynccontextmanager
async def fleet_lifespan(app: FastAPI) -> AsyncIterator[None]:
    worker = getattr(app.state, "ingest", None)
    dispatcher = CommandDispatcher(app.state.store, worker.publish if worker is not None else None)
    app.state.fleet_dispatcher = dispatcher
    dispatcher.start()  # its first pass re-publishes every unanswered command (e.g. after a restart)
    try:
        yield
    finally:
        dispatcher.stop()


def get_fleet_store(request: Request) -> FleetStore:
    return request.app.state.store


def get_dispatcher(request: Request) -> CommandDispatcher:
    return request.app.state.fleet_dispatcher


def get_registry(request: Request) -> ModelRegistry:
    return ModelRegistry(request.app.state.store, request.app.state.settings.data_dir)


FleetStoreDep = Annotated[FleetStore, Depends(get_fleet_store)]
DispatcherDep = Annotated[CommandDispatcher, Depends(get_dispatcher)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
