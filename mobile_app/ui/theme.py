"""Colours chosen for reading in direct sunlight: saturated fills, black or white text, no greys on grey."""

from __future__ import annotations

BG = (0.96, 0.96, 0.94, 1)
SURFACE = (1, 1, 1, 1)
INK = (0.05, 0.05, 0.05, 1)
INK_SOFT = (0.22, 0.22, 0.22, 1)
PRIMARY = (0.05, 0.28, 0.55, 1)
ON_PRIMARY = (1, 1, 1, 1)
NAV_BG = (0.08, 0.08, 0.10, 1)
NAV_ACTIVE = (1.0, 0.80, 0.0, 1)
OFFLINE_BG = (0.70, 0.0, 0.0, 1)
LIVE_BG = (0.10, 0.36, 0.14, 1)
BADGE = (0.85, 0.0, 0.0, 1)
DONE_BG = (0.80, 0.92, 0.80, 1)
BAR = (0.05, 0.28, 0.55, 1)
CHART_LINE = (0.75, 0.10, 0.05, 1)
CHART_GRID = (0.75, 0.75, 0.75, 1)
CLIMATE_LINE = (0.80, 0.33, 0.00, 1)  # temperature mean
CLIMATE_BAND = (0.98, 0.80, 0.55, 1)  # hourly min-max
FORECAST_BAR = (0.09, 0.44, 0.16, 1)  # pick-ready expected
FORECAST_BAND = (0.05, 0.05, 0.05, 1)  # 80 % band whisker
TODAY_LINE = (0.05, 0.28, 0.55, 1)

# urgency -> (background, text)
URGENCY = {
    "alarm": ((0.74, 0.0, 0.0, 1), (1, 1, 1, 1)),
    "pick": ((1.0, 0.72, 0.0, 1), (0, 0, 0, 1)),
    "ok": ((0.09, 0.44, 0.16, 1), (1, 1, 1, 1)),
    "unknown": ((0.36, 0.36, 0.36, 1), (1, 1, 1, 1)),
}

SEVERITY = {
    "critical": (0.74, 0.0, 0.0, 1),
    "warning": (1.0, 0.62, 0.0, 1),
    "info": (0.05, 0.28, 0.55, 1),
}

TOUCH = 48  # dp: the smallest touch target anywhere in the app

# Kivy's default font (Roboto) and some CJK fonts lack arrows; Kivy ships DejaVu Sans (kivy/data/fonts), which has
# them, and the text provider has no font fallback: symbols are drawn with it explicitly (markup [font=...])
SYMBOL_FONT = "DejaVuSans"
