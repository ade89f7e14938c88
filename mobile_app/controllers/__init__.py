"""Screen logic without Kivy: each controller loads its screen's state through the Session and acts on it."""

from mobile_app.controllers.alerts import AlertsController, AlertsState
from mobile_app.controllers.detail import DetailState, ShedDetailController
from mobile_app.controllers.harvest import HarvestController, PlanState
from mobile_app.controllers.overview import OverviewController, OverviewState
from mobile_app.controllers.session import Fetched, Session
from mobile_app.controllers.settings import SettingsController

__all__ = [
    "AlertsController", "AlertsState", "DetailState", "Fetched", "HarvestController", "OverviewController",
    "OverviewState", "PlanState", "Session", "SettingsController", "ShedDetailController",
]
