"""Storage for the cloud API: the ``Store`` protocol and its SQLite implementation."""

from cloud_api.storage.base import Store
from cloud_api.storage.records import (
    CountBucket,
    DeadLetterRecord,
    DeviceRecord,
    EventQuery,
    NewDeadLetter,
    ShedSummary,
)
from cloud_api.storage.sqlite_store import SqliteStore

__all__ = [
    "CountBucket",
    "DeadLetterRecord",
    "DeviceRecord",
    "EventQuery",
    "NewDeadLetter",
    "ShedSummary",
    "SqliteStore",
    "Store",
]
