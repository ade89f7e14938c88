"""Dependencies of the QA routes (kept apart from api/deps.py; the store is the shared one)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends

from cloud_api.api.deps import get_settings, get_store
from cloud_api.core.config import Settings
from cloud_api.services.qa import QaService
from cloud_api.storage.base import Store


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def get_qa_service(store: Annotated[Store, Depends(get_store)],
                   settings: Annotated[Settings, Depends(get_settings)]) -> QaService:
    return QaService(store, settings.timezone)  # type: ignore[arg-type]  # SqliteStore implements QaStore too


QaServiceDep = Annotated[QaService, Depends(get_qa_service)]
