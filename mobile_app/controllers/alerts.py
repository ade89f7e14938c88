"""Alerts screen: list by severity, acknowledge (queued when offline), who acknowledged."""

from __future__ import annotations

from dataclasses import dataclass

from mobile_app.controllers.session import Session
from mobile_app.models.alerts import AlertItem, AlertSummary, sort_alerts


@dataclass(frozen=True)
class AlertsState:
    items: list[AlertItem]
    summary: AlertSummary
    fetched_ms: int | None
    offline: bool
    error: str | None
    show_cleared: bool
    pending_actions: int


class AlertsController:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.show_cleared = False
        self._items: list[AlertItem] = []
        self._fetched_ms: int | None = None
        self._offline = False
        self._error: str | None = None

    def load(self) -> AlertsState:
        self.session.flush_outbox()
        fetched = self.session.fetch("alerts", lambda c: c.alerts())
        self._items = [AlertItem.from_api(a) for a in fetched.value or []]
        self._fetched_ms, self._offline, self._error = fetched.fetched_ms, fetched.offline, fetched.error
        return self.state()

    def state(self) -> AlertsState:
        acks = self.session.cache.pending_for("ack")
        items = [a.pending_ack() if a.id in acks and a.state == "active" else a for a in self._items]
        summary = AlertSummary.from_alerts(items)
        shown = items if self.show_cleared else [a for a in items if a.is_open]
        return AlertsState(sort_alerts(shown), summary, self._fetched_ms, self._offline, self._error,
                           self.show_cleared, self.session.pending_count)

    def set_show_cleared(self, show: bool) -> AlertsState:
        self.show_cleared = show
        return self.state()

    def acknowledge(self, alert_id: str) -> AlertsState:
        """Acknowledge now, or queue it if the server cannot be reached; reload when it went through."""
        result = self.session.submit("ack", alert_id)
        if result.remaining == 0 and self.session.online:
            return self.load()
        return self.state()
