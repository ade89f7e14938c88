"""Plain data of the app (no Kivy): parsed from the API's JSON, with the rules the screens show."""

from mobile_app.models.alerts import AlertItem, AlertSummary
from mobile_app.models.plan import HarvestPlan, OperatorPlan
from mobile_app.models.sheds import CameraStatus, RowCounts, ShedDetail, ShedTile, TrendSeries, Urgency

__all__ = [
    "AlertItem", "AlertSummary", "CameraStatus", "HarvestPlan", "OperatorPlan", "RowCounts", "ShedDetail",
    "ShedTile", "TrendSeries", "Urgency",
]
