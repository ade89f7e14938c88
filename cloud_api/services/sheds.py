"""Shed counts: the current picture and the time series, with range checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud_api.storage.base import Store
from cloud_api.storage.records import CountBucket, DeviceRecord, LatestCount, ShedSummary
from cloud_api.storage.sqlite_store import natural_key

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


@dataclass(frozen=True)
class ShedCamera:
    site: str
    device: str
    camera: str
    state: str  # the device's state: "online" | "offline" | "unknown"
    last_seen_ms: int | None  # when the cloud last heard from the device


@dataclass(frozen=True)
class ShedRow:
    row: str | None
    counts: dict[str, int]


@dataclass(frozen=True)
class ShedOverview:
    id: str
    site: str | None
    counts: dict[str, int]
    updated_ms: int
    pick_ready: int
    trend: int
    camera_state: str
    open_alerts: int
    rows: list[ShedRow]
    cameras: list[ShedCamera]


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for label, n in counts.items():
        into[label] = into.get(label, 0) + n


def camera_state(cameras: Sequence[ShedCamera]) -> str:
    """offline if any camera of the shed is offline, online if all are online, unknown otherwise (or none)."""
    states = {c.state for c in cameras}
    if "offline" in states:
        return "offline"
    return "online" if states == {"online"} else "unknown"


class ShedService:
    def __init__(self, store: Store, pick_ready_labels: Sequence[str] = ("ripe",),
                 pick_ready_by_shed: dict[str, list[str]] | None = None) -> None:
        self._store = store
        self._pick_ready_labels = tuple(pick_ready_labels)
        self._pick_ready_by_shed = {shed: tuple(labels) for shed, labels in (pick_ready_by_shed or {}).items()}

    def list(self) -> list[ShedSummary]:
        return self._store.list_sheds()

    def pick_ready(self, counts: dict[str, int], shed: str | None = None) -> int:
        """Fruits ready to pick: the counts of the shed's pick-ready labels (its own list, else the default)."""
        labels = self._pick_ready_by_shed.get(shed, self._pick_ready_labels) if shed else self._pick_ready_labels
        return sum(counts.get(label, 0) for label in labels)

    def overview(self, now_ms: int, shed_id: str | None = None) -> list[ShedOverview]:
        """Every shed with counts (or just ``shed_id``), with pick-ready, trend, cameras and open alerts.

        trend = pick_ready now - pick_ready 24 h ago, where "24 h ago" is the latest count of each (device,
        camera, row) in the day before that instant; 0 when the shed had no count then (unknown).
        """
        latest: dict[str, list[LatestCount]] = {}
        for item in self._store.latest_counts(shed_id):
            latest.setdefault(item.shed, []).append(item)
        past = self._store.shed_counts_at(now_ms - DAY_MS, DAY_MS)
        alerts = self._store.open_alerts_by_shed()
        sites = self._store.shed_sites()
        devices = {(d.site, d.device): d for d in self._store.list_devices()}
        result = []
        for shed in sorted(latest, key=natural_key):
            items = latest[shed]
            counts: dict[str, int] = {}
            rows: dict[str | None, dict[str, int]] = {}
            for item in items:
                _add(counts, item.counts)
                _add(rows.setdefault(item.row, {}), item.counts)
            cameras = self._cameras(shed, items, devices)
            pick_ready = self.pick_ready(counts, shed)
            result.append(ShedOverview(
                id=shed, site=sites.get(shed), counts=counts, updated_ms=max(i.ts_ms for i in items),
                pick_ready=pick_ready, trend=pick_ready - self.pick_ready(past[shed], shed) if shed in past else 0,
                camera_state=camera_state(cameras), open_alerts=alerts.get(shed, 0),
                rows=[ShedRow(row=r, counts=c) for r, c in sorted(rows.items(), key=lambda kv: natural_key(kv[0] or ""))],
                cameras=cameras,
            ))
        return result

    def detail(self, shed_id: str, now_ms: int) -> tuple[ShedOverview, str | None]:
        """One shed's overview and the event id of its latest snapshot (or None); ``UnknownShed`` if none."""
        found = self.overview(now_ms, shed_id)
        if not found:
            raise UnknownShed(shed_id)
        return found[0], self._store.latest_snapshot(shed_id)

    @staticmethod
    def _cameras(shed: str, items: list[LatestCount],
                 devices: dict[tuple[str, str], DeviceRecord]) -> list[ShedCamera]:
        """Cameras that counted in the shed plus cameras whose device status maps them to it."""
        triples = {(i.site, i.device, i.camera) for i in items}
        for device in devices.values():
            for camera in device.cameras:
                zone = camera.get("zone") or {}
                if zone.get("kind") == "shed" and zone.get("id") == shed:
                    triples.add((device.site, device.device, str(camera.get("name"))))
        cameras = []
        for site, device_id, camera_name in sorted(triples, key=lambda t: [natural_key(part) for part in t]):
            record = devices.get((site, device_id))
            cameras.append(ShedCamera(
                site=site, device=device_id, camera=camera_name, state=record.state if record else "unknown",
                last_seen_ms=record.last_seen_ms if record else None,
            ))
        return cameras

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
