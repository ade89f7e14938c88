"""Site overview: every shed as a tile, the "my sheds today" filter, live updates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mobile_app.controllers.session import Fetched, Session
from mobile_app.models.alerts import AlertItem, AlertSummary, max_severity_by_zone
from mobile_app.models.forecast import Tomorrow, tomorrow_by_shed
from mobile_app.models.plan import HarvestPlan
from mobile_app.models.sheds import ShedTile, _natural


@dataclass(frozen=True)
class OverviewState:
    tiles: list[ShedTile]
    total: int
    fetched_ms: int | None
    offline: bool
    error: str | None
    filter_mine: bool
    alert_badge: int
    pending_actions: int
    mine: frozenset[str] = field(default_factory=frozenset)
    tomorrow: dict[str, Tomorrow] = field(default_factory=dict)  # forecast pick-ready per shed, when known


class OverviewController:
    def __init__(self, session: Session, pick_threshold: int = 40) -> None:
        self.session = session
        self.pick_threshold = pick_threshold
        self.filter_mine = False
        self._sheds: dict[str, ShedTile] = {}
        self._severity: dict[str, str] = {}
        self._badge = 0
        self._mine: set[str] = set()
        self._fetched: Fetched = Fetched(None, None)
        self._tomorrow: dict[str, Tomorrow] = {}

    def load(self) -> OverviewState:
        """Fetch sheds and alerts (and the plan when filtering); fall back to the cache offline."""
        self.session.flush_outbox()
        sheds = self.session.fetch("sheds", lambda c: c.sheds())
        alerts = self.session.fetch("alerts", lambda c: c.alerts())
        self._fetched = sheds
        self._sheds = {t.id: t for t in (ShedTile.from_api(d) for d in sheds.value or [])}
        items = [AlertItem.from_api(a) for a in alerts.value or []]
        acks = self.session.cache.pending_for("ack")
        items = [a.pending_ack() if a.id in acks else a for a in items]
        self._severity = max_severity_by_zone(items)
        self._badge = AlertSummary.from_alerts(items).active
        forecast = self.session.fetch("site_forecast", lambda c: c.site_forecast())
        self._tomorrow = tomorrow_by_shed(forecast.value if isinstance(forecast.value, dict) else None,
                                          date.today().isoformat())
        if self.filter_mine:
            self._load_mine()
        return self.state()

    def _load_mine(self) -> None:
        plan = self.session.fetch("harvest_plan", lambda c: c.harvest_plan())
        self._mine = HarvestPlan.from_api(plan.value).sheds_of(self.session.operator) if plan.value else set()

    def set_filter_mine(self, mine: bool) -> OverviewState:
        self.filter_mine = mine
        if mine:
            self._load_mine()
        return self.state()

    def state(self) -> OverviewState:
        tiles = [t.with_alert_severity(self._severity.get(t.id)) for t in self._sheds.values()]
        tiles.sort(key=lambda t: _natural(t.id))
        shown = [t for t in tiles if t.id in self._mine] if self.filter_mine else tiles
        return OverviewState(
            tiles=shown, total=len(tiles), fetched_ms=self._fetched.fetched_ms, offline=self._fetched.offline,
            error=self._fetched.error, filter_mine=self.filter_mine, alert_badge=self._badge,
            pending_actions=self.session.pending_count, mine=frozenset(self._mine), tomorrow=dict(self._tomorrow),
        )

    def tile(self, shed_id: str) -> ShedTile | None:
        tile = self._sheds.get(shed_id)
        return tile.with_alert_severity(self._severity.get(shed_id)) if tile else None

    def urgency(self, tile: ShedTile) -> str:
        return tile.urgency(self.pick_threshold).value

    def apply_live(self, message: dict[str, Any]) -> str:
        """Fold one WebSocket message into the state: 'changed' (redraw), 'refresh' (reload soon) or 'ignored'."""
        kind = message.get("type")
        data = message.get("data") or {}
        if kind == "count":
            if "pick_ready" in data and "id" in data:  # a ready shed summary
                tile = ShedTile.from_api(data)
                self._sheds[tile.id] = tile
                return "changed"
            zone = data.get("zone") or {}
            return "refresh" if zone.get("kind", "shed") == "shed" else "ignored"
        if kind in ("alert", "device"):
            return "refresh"
        return "ignored"
