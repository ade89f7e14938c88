from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from cloud_api.api.deps import StoreDep
from cloud_api.api.schemas import DeadLetterOut

router = APIRouter(tags=["dead letters"])


@router.get("/dead-letters", response_model=list[DeadLetterOut], summary="Messages that failed validation")
def list_dead_letters(store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DeadLetterOut]:
    return [
        DeadLetterOut(
            id=d.id,
            received_ms=d.received_ms,
            topic=d.topic,
            reason=d.reason,
            raw_size=d.raw_size,
            raw_truncated=len(d.raw) < d.raw_size,
            raw_base64=base64.b64encode(d.raw).decode("ascii"),
            raw_text=d.raw.decode("utf-8", "backslashreplace"),
        )
        for d in store.list_dead_letters(limit)
    ]
