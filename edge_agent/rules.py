"""Rules turn per-frame detections into outcomes: count events per zone, inspection events per part, alerts.

Rules decide *what* to publish; the agent turns outcomes into wire payloads (ids, seq, spool, snapshots).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edge_agent.config import CameraConfig, CountRuleConfig, InspectionRuleConfig, ZoneConfig
from edge_agent.detections import Detections
from edge_agent.tracking import UniqueCounter
from edge_agent.zones import LineCounter, PolygonZone

UNCALIBRATED_REJECT = 0.5  # reject_score when neither the config nor the model file sets one


@dataclass(frozen=True)
class ZoneRef:
    kind: Literal["shed", "line"]
    id: str
    row: str | None = None


@dataclass(frozen=True)
class EventOut:
    kind: Literal["count", "inspection"]
    zone: ZoneRef
    detections: Detections
    counts: dict[str, int]
    verdict: Literal["pass", "reject"] | None = None
    snapshot: bool = False


@dataclass(frozen=True)
class AlertOut:
    code: str
    severity: Literal["info", "warning", "critical"]
    message: str
    dedup_key: str
    zone: ZoneRef | None = None


Outcome = EventOut | AlertOut


@dataclass(frozen=True)
class CountDecision:
    counts: dict[str, int]
    reason: str  # "change" or "interval"


class CountRule:
    """Objects per label as the per-label median over the last ``window`` frames.

    The median hides a fruit that flickers for one frame behind a leaf. An event is due when the smoothed
    counts change, or when ``interval_s`` has passed since the last one (a heartbeat with the same counts).
    """

    def __init__(self, labels: tuple[str, ...], window: int = 3, interval_s: float = 60.0) -> None:
        self.labels = labels
        self.interval_s = interval_s
        self._history: deque[Counter[str]] = deque(maxlen=window)
        self._last_counts: dict[str, int] | None = None
        self._last_ts: float | None = None

    def smoothed(self) -> dict[str, int]:
        return {label: int(round(float(np.median([f[label] for f in self._history])))) for label in self.labels}

    def update(self, detections: Detections, now_s: float) -> CountDecision | None:
        """Feed one frame's detections; return the counts to publish, or ``None`` if nothing is due."""
        self._history.append(Counter(detections.label_names()))
        return self.decide(self.smoothed(), now_s)

    def decide(self, counts: dict[str, int], now_s: float) -> CountDecision | None:
        if self._last_counts is None or counts != self._last_counts:
            reason = "change"
        elif self._last_ts is not None and now_s - self._last_ts >= self.interval_s:
            reason = "interval"
        else:
            return None
        self._last_counts, self._last_ts = counts, now_s
        return CountDecision(counts, reason)


@dataclass
class _CountTarget:
    zone: ZoneRef
    polygon: PolygonZone | None
    rule: CountRule
    unique: UniqueCounter = field(default_factory=UniqueCounter)
    sweep_start: float | None = None
    last_snapshot: float | None = None


def _ref(zone: ZoneConfig) -> ZoneRef:
    return ZoneRef(zone.kind, zone.id, zone.row)


class ZoneCountRule:
    """Greenhouse counting for one camera: per polygon zone (or the whole frame), frame or unique mode."""

    def __init__(self, camera: CameraConfig, labels: tuple[str, ...]) -> None:
        assert isinstance(camera.rule, CountRuleConfig)
        self.config: CountRuleConfig = camera.rule
        self.camera = camera
        self.labels = labels
        window = 1 if camera.rule.mode == "unique" else camera.smoothing_frames
        if camera.zones:
            self.targets = [_CountTarget(ZoneRef(z.kind, z.id, z.row), z.build(),
                                         CountRule(labels, window, camera.publish_interval_s)) for z in camera.zones]
        else:
            self.targets = [_CountTarget(_ref(camera.zone), None, CountRule(labels, window, camera.publish_interval_s))]

    @property
    def needs_tracking(self) -> bool:
        return self.config.mode == "unique"

    def process(self, detections: Detections, tracked: Detections | None, size: tuple[int, int],
                now_s: float) -> list[Outcome]:
        width, height = size
        outcomes: list[Outcome] = []
        for target in self.targets:
            source = tracked if self.needs_tracking and tracked is not None else detections
            inside = source if target.polygon is None else source.filter(target.polygon.trigger(source, width, height))
            if self.needs_tracking:
                if target.sweep_start is None or now_s - target.sweep_start >= self.config.sweep_s:
                    target.unique.reset()
                    target.sweep_start = now_s
                target.unique.update(inside)
                decision = target.rule.decide(target.unique.counts(self.labels), now_s)
            else:
                decision = target.rule.update(inside, now_s)
            if decision is None:
                continue
            periodic = self.camera.snapshots.periodic_s
            snap = periodic is not None and (target.last_snapshot is None or now_s - target.last_snapshot >= periodic)
            if snap:
                target.last_snapshot = now_s
            outcomes.append(EventOut("count", target.zone, inside, decision.counts, snapshot=snap))
            outcomes.extend(self._overripe(target.zone, decision.counts))
        return outcomes

    def _overripe(self, zone: ZoneRef, counts: dict[str, int]) -> list[Outcome]:
        label, total = self.config.overripe_label, sum(counts.values())
        if not label or total == 0:
            return []
        share = counts.get(label, 0) / total
        if share < self.config.overripe_share:
            return []
        return [AlertOut("overripe", "warning", f"{zone.id}: {share:.0%} of {total} fruits are {label}",
                         f"overripe:{zone.id}:{zone.row or ''}", zone)]


class InspectionRule:
    """Factory inspection: one event per part, pass or reject, plus a sliding defect-rate alert."""

    def __init__(self, camera: CameraConfig, labels: tuple[str, ...], file_reject_score: float | None = None) -> None:
        assert isinstance(camera.rule, InspectionRuleConfig)
        self.config: InspectionRuleConfig = camera.rule
        self.reject_score = next(s for s in (self.config.reject_score, file_reject_score, UNCALIBRATED_REJECT)
                                 if s is not None)
        self.camera = camera
        self.zone = _ref(camera.zone)
        defect = self.config.defect_labels
        self.defect_ids = np.array([i for i, name in enumerate(labels)
                                    if (name in defect if defect is not None else name != self.config.part_label)])
        self.part_id = labels.index(self.config.part_label) if self.config.part_label in labels else -1
        self.line: LineCounter | None = self.config.line.build() if self.config.line is not None else None
        self._part_defects: dict[int, Detections] = {}
        self._verdicts: deque[bool] = deque(maxlen=self.config.defect_rate_window)

    @property
    def needs_tracking(self) -> bool:
        return self.config.mode == "line"

    def _defects(self, detections: Detections) -> Detections:
        return detections.filter(np.isin(detections.class_id, self.defect_ids))

    def _event(self, defects: Detections) -> list[Outcome]:
        reject = bool(np.any(defects.confidence >= self.reject_score))
        self._verdicts.append(reject)
        event = EventOut("inspection", self.zone, defects, dict(Counter(defects.label_names())),
                         verdict="reject" if reject else "pass", snapshot=reject and self.camera.snapshots.on_reject)
        return [event, *self._rate_alert()]

    def _rate_alert(self) -> list[Outcome]:
        if len(self._verdicts) < max(10, self.config.defect_rate_window // 2):
            return []
        rate = sum(self._verdicts) / len(self._verdicts)
        if rate < self.config.defect_rate_alert:
            return []
        return [AlertOut("defect_rate_high", "critical",
                         f"{self.zone.id}: defect rate {rate:.1%} over the last {len(self._verdicts)} parts "
                         f"(limit {self.config.defect_rate_alert:.1%})", f"defect_rate_high:{self.zone.id}", self.zone)]

    def process(self, detections: Detections, tracked: Detections | None, size: tuple[int, int],
                now_s: float) -> list[Outcome]:
        if self.config.mode == "frame":
            return self._event(self._defects(detections))
        assert self.line is not None and tracked is not None
        parts = tracked.filter(tracked.class_id == self.part_id)
        defects = self._defects(detections)
        centres = (defects.xyxy[:, :2] + defects.xyxy[:, 2:]) / 2
        for i, track_id in enumerate(parts.tracker_id if parts.tracker_id is not None else []):
            x1, y1, x2, y2 = parts.xyxy[i]
            inside = (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
            if inside.any():
                seen = self._part_defects.get(int(track_id))
                found = defects.filter(inside)
                self._part_defects[int(track_id)] = found if seen is None or found.confidence.max() > \
                    seen.confidence.max() else seen
        outcomes: list[Outcome] = []
        width, height = size
        for crossing in self.line.trigger(parts, width, height):
            found = self._part_defects.pop(crossing.tracker_id, Detections.empty(detections.labels))
            outcomes.extend(self._event(found))
        return outcomes


def build_rule(camera: CameraConfig, labels: tuple[str, ...],
               file_reject_score: float | None = None) -> ZoneCountRule | InspectionRule:
    """``file_reject_score``: the pass/reject threshold calibrated into the model file, if any."""
    if isinstance(camera.rule, InspectionRuleConfig):
        return InspectionRule(camera, labels, file_reject_score)
    return ZoneCountRule(camera, labels)


def rule_for_model(camera: CameraConfig, rule: ZoneCountRule | InspectionRule, labels: tuple[str, ...],
                   detector) -> tuple[ZoneCountRule | InspectionRule, bool]:
    """The rule after a model update: rebuilt for a new label set (-> True), else kept with its state (the
    defect-rate window), an inspection rule taking the new file's calibrated reject score unless the config
    sets one."""
    file_reject = getattr(detector, "calibrated_reject_score", None)
    if detector.labels != labels:
        return build_rule(camera, detector.labels, file_reject), True
    if isinstance(rule, InspectionRule) and rule.config.reject_score is None:
        rule.reject_score = file_reject if file_reject is not None else UNCALIBRATED_REJECT
    return rule, False
