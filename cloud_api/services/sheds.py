"""Shed counts: the current picture and the time series, with range checks."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_api.storage.base import Store
from cloud_api.storage.records import CountBucket, ShedSummary

DAY_MS = 24 * 3600 * 1000
DEFAULT_BUCKET_MS = 5 * 60 * 1000
MIN_BUCKET_MS = 1000
MAX_BUCKETS = 10_000


class UnknownShed(LookupError):
    """No count event was ever stored for this shed."""


class InvalidRange(ValueError):
    """A time range or bucket size that cannot be served; the message says which parameter."""


@dataclass(frozen=True)
class ShedSeries:
    shed: str
    from_ms: int
    to_ms: int
    bucket_ms: int
    points: list[CountBucket]


class ShedService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self) -> list[ShedSummary]:
        return self._store.list_sheds()

    def series(
        self, shed_id: str, *, now_ms: int, from_ms: int | None, to_ms: int | None, bucket_ms: int | None
    ) -> ShedSeries:
        to = now_ms if to_ms is None else to_ms
        start = to - DAY_MS if from_ms is None else from_ms
        bucket = DEFAULT_BUCKET_MS if bucket_ms is None else bucket_ms
        if bucket < MIN_BUCKET_MS:
            raise InvalidRange(f"bucket: must be at least {MIN_BUCKET_MS} ms, got {bucket}")
        if start >= to:
            raise InvalidRange(f"from: must be before to ({start} >= {to})")
        buckets = -(-(to - start) // bucket)
        if buckets > MAX_BUCKETS:
            raise InvalidRange(f"bucket: the range would have {buckets} buckets, at most {MAX_BUCKETS} are allowed")
        if not self._store.shed_exists(shed_id):
            raise UnknownShed(shed_id)
        points = self._store.shed_count_buckets(shed_id, start, to, bucket)
        return ShedSeries(shed=shed_id, from_ms=start, to_ms=to, bucket_ms=bucket, points=points)
