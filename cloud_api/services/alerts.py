"""Alert lifecycle: active -> acknowledged -> cleared (or active -> cleared), recording who and when.

Grouping of incoming alert payloads by dedup key happens in the store as they are ingested (one open alert
per dedup key; a payload arriving after the alert was cleared opens a new one).
"""

from __future__ import annotations

import time

from cloud_api.storage.base import Store
from cloud_api.storage.records import AlertQuery, AlertRecord, AlertSummary

# target state -> the states it may be reached from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "acknowledged": ("active",),
    "cleared": ("active", "acknowledged"),
}


class UnknownAlert(LookupError):
    """No alert with this id."""


class TransitionNotAllowed(ValueError):
    """The alert is in a state the requested transition cannot start from."""

    def __init__(self, alert: AlertRecord, to_state: str) -> None:
        super().__init__(f"alert {alert.id} is {alert.state}; it cannot become {to_state}")
        self.alert = alert
        self.to_state = to_state


def parse_alert_id(value: str) -> int | None:
    """API alert ids are the lifecycle row ids as decimal strings."""
    return int(value) if value.isdigit() and len(value) < 19 else None


class AlertService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self, query: AlertQuery) -> list[AlertRecord]:
        return self._store.list_alerts(query)

    def summary(self) -> AlertSummary:
        return self._store.alert_summary()

    def acknowledge(self, alert_id: str, by: str) -> AlertRecord:
        return self._move(alert_id, "acknowledged", by)

    def clear(self, alert_id: str, by: str) -> AlertRecord:
        return self._move(alert_id, "cleared", by)

    def _move(self, alert_id: str, to_state: str, by: str) -> AlertRecord:
        row_id = parse_alert_id(alert_id)
        if row_id is None:
            raise UnknownAlert(alert_id)
        record, changed = self._store.transition_alert(
            row_id, to_state, TRANSITIONS[to_state], by, time.time_ns() // 1_000_000
        )
        if record is None:
            raise UnknownAlert(alert_id)
        if not changed:
            raise TransitionNotAllowed(record, to_state)
        return record
