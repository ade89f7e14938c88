"""Test helpers that start real services (pytest-free, usable from scripts too)."""
