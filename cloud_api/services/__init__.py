"""Domain services: plain Python, raise domain errors (routes turn them into HTTP errors)."""
