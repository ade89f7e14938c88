from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from fieldline.contract import Event

from cloud_api.api.deps import StoreDep
from cloud_api.api.errors import MAX_EPOCH_MS, UNPROCESSABLE
from cloud_api.storage.records import EventQuery

router = APIRouter(tags=["events"])


@router.get("/events", response_model=list[Event], summary="Stored events, newest first", responses=UNPROCESSABLE)
def list_events(
    store: StoreDep,
    site: Annotated[str | None, Query(max_length=64, description="Site id; a device is (site, device)")] = None,
    device: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64, description="Zone id, e.g. shed-07")] = None,
    kind: Annotated[Literal["count", "inspection", "track"] | None, Query()] = None,
    from_ms: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_EPOCH_MS, description="Earliest ts_ms (inclusive)")
    ] = None,
    to_ms: Annotated[int | None, Query(alias="to", ge=0, le=MAX_EPOCH_MS, description="Latest ts_ms (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Event]:
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        raise HTTPException(422, "from: must be before to")
    query = EventQuery(site=site, device=device, zone=zone, kind=kind, from_ms=from_ms, to_ms=to_ms, limit=limit)
    return [Event.model_validate(payload) for payload in store.list_events(query)]
