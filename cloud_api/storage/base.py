"""The ``Store`` protocol: what the ingest worker and the API need from storage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fieldline.contract import Alert, CommandReply, DeviceStats, DeviceStatus, Event, Telemetry

from cloud_api.storage.records import (
    AlertQuery,
    AlertRecord,
    AlertSummary,
    CountBucket,
    DeadLetterRecord,
    DeviceAudit,
    DeviceRecord,
    EventQuery,
    HarvestDoneRecord,
    HarvestPlanRecord,
    LatestCount,
    NewDeadLetter,
    ShedSummary,
    StoreChange,
    TokenRecord,
    UserRecord,
)
from cloud_api.storage.sqlite_climate import ClimateBucket, SensorState


class Store(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def ping(self) -> bool: ...

    def add_change_listener(self, listener: Callable[[StoreChange], None]) -> None:
        """Called after every commit that stored a count/inspection event, an alert change or a device status."""
        ...

    # writes (called from the ingest writer thread)
    def write_events(self, events: list[Event], received_ms: int, payloads: Sequence[bytes | None] | None = None) -> int:
        """Store events in one transaction; returns how many were new (an ``EventsWritten``, with ``collisions``).

        A repeated id with the same content (a resend, a replay) is stored once; with other content it is an id
        collision, stored under a derived id and alerted (see ``sqlite_identity``).

        ``payloads``: the JSON each event was parsed from, kept as received (fields of a newer minor version
        included); without it the events are serialised again.
        """
        ...

    def write_status(self, status: DeviceStatus, received_ms: int) -> bool:
        """Apply a device status; False when it is stale (older boot than the one stored)."""
        ...

    def write_alerts(self, alerts: list[Alert], received_ms: int) -> int: ...

    def write_stats(self, stats: DeviceStats, received_ms: int) -> None: ...

    def write_snapshot(self, site: str, device: str, event_id: str, jpeg: bytes, received_ms: int) -> None: ...

    def write_command_reply(self, site: str, device: str, name: str, reply: CommandReply, received_ms: int) -> bool:
        """Store a device's reply to a command the API sent it (matched by request id); False when none matches."""
        ...

    def write_dead_letters(self, letters: list[NewDeadLetter], received_ms: int) -> None:
        """Store dead letters; raw is truncated to the configured limit, its full size is kept."""
        ...

    # reads (called from API request threads)
    def list_devices(self) -> list[DeviceRecord]: ...

    def get_device(self, site: str, device: str) -> DeviceRecord | None:
        """A device is (site, device): the same name at two sites is two devices."""
        ...

    def device_audit(self, site: str, device: str) -> DeviceAudit | None:
        """Seq gaps and repeats per install and boot (see ``sqlite_identity.audit``); None when unknown."""
        ...

    def count_id_collisions(self) -> int: ...

    def list_events(self, query: EventQuery) -> list[dict[str, Any]]: ...

    def list_sheds(self) -> list[ShedSummary]: ...

    def shed_exists(self, shed_id: str) -> bool: ...

    def shed_count_buckets(self, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int) -> list[CountBucket]: ...

    def list_dead_letters(self, limit: int) -> list[DeadLetterRecord]: ...

    def get_snapshot(self, event_id: str) -> bytes | None: ...

    # shed overview
    def latest_counts(self, shed_id: str | None = None) -> list[LatestCount]: ...

    def shed_counts_at(self, at_ms: int, lookback_ms: int) -> dict[str, dict[str, int]]: ...

    def shed_sites(self) -> dict[str, str]: ...

    def latest_snapshot(self, shed_id: str) -> str | None: ...

    # alert lifecycle
    def list_alerts(self, query: AlertQuery) -> list[AlertRecord]: ...

    def get_alert(self, alert_id: int) -> AlertRecord | None: ...

    def alert_summary(self) -> AlertSummary: ...

    def open_alerts_by_shed(self) -> dict[str, int]: ...

    def transition_alert(
        self, alert_id: int, to_state: str, allowed_from: tuple[str, ...], by: str, at_ms: int
    ) -> tuple[AlertRecord | None, bool]: ...

    # users and tokens
    def create_user(self, user: UserRecord) -> None: ...

    def get_user(self, username: str) -> UserRecord | None: ...

    def list_users(self) -> list[UserRecord]: ...

    def add_token(self, token: TokenRecord, now_ms: int) -> None: ...

    def token_owner(self, token_sha256: str, now_ms: int) -> tuple[UserRecord, TokenRecord] | None: ...

    def delete_token(self, token_sha256: str) -> bool: ...

    def list_tokens(self, username: str | None, now_ms: int) -> list[TokenRecord]: ...

    # harvest
    def get_harvest_plan(self, date: str) -> HarvestPlanRecord | None: ...

    def put_harvest_plan(self, plan: HarvestPlanRecord, *, replace: bool) -> HarvestPlanRecord: ...

    def mark_shed_done(self, mark: HarvestDoneRecord) -> HarvestDoneRecord: ...

    def unmark_shed_done(self, date: str, shed_id: str) -> bool: ...

    def list_done(self, date: str) -> list[HarvestDoneRecord]: ...

    # climate (see ``sqlite_climate``): values in °C / % relative humidity
    def write_telemetry(self, readings: Sequence[Telemetry], received_ms: int) -> int:
        """Store climate readings (a repeated (site, sensor, quantity, ts_ms) is ignored); returns how many were new."""
        ...

    def climate_series(self, shed: str, quantity: str, from_ms: int, to_ms: int,
                       bucket_ms: int) -> list[ClimateBucket]:
        """Mean / min / max per bucket over the shed's sensors, from raw points and (older) hourly rollups."""
        ...

    def climate_sensors(self, shed: str | None = None) -> list[SensorState]: ...

    def climate_sheds(self) -> dict[str, str]: ...

    def put_temperature_forecast(self, site: str, shed: str, points: Sequence[tuple[int, float]],
                                 created_ms: int) -> None: ...

    def temperature_forecast(self, site: str, shed: str, from_ms: int, to_ms: int) -> list[tuple[int, float]]: ...
