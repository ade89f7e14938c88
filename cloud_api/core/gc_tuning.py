"""Garbage-collector settings for a long-running API process.

Ingest creates and drops several container objects per MQTT message. With CPython's defaults a young
collection runs every 700 allocations and every tenth one also walks the objects kept since start-up
(FastAPI, pydantic schemas, SQLite statements). Freezing what exists after start-up takes those out of
every later collection, and a larger first threshold makes young collections rarer: measured in-process,
event classification went from 19 to 13 us per message (``bench/ingest.py`` shows the end-to-end effect).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_server() -> None:
    """Call once, after start-up imports, in the process that serves (not in tests that build many apps)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
