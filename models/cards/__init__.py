"""Model cards rendered from recorded metrics (detectors and surface-anomaly)."""
