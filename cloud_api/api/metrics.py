"""Prometheus exposition: a custom collector that reads the live counters at scrape time.

Nothing is counted twice: the ingest counters, the WebSocket hub and the time-series writer keep their own
numbers (also shown by /api/v1/health); this collector only translates them. One registry per app, so
several apps in one process (tests) do not clash.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from cloud_api.ingest.counters import WRITE_LATENCY_BUCKETS
from cloud_api.ingest.reasons import REASON_CLASSES


class FieldLineCollector(Collector):
    """Reads ``app.state`` (ingest worker, live hub, time-series store) on every scrape."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        state = self._app.state
        worker = getattr(state, "ingest", None)
        yield from self._ingest(worker)
        hub = getattr(state, "live", None)
        if hub is not None:
            c = hub.counters()
            yield GaugeMetricFamily("fieldline_ws_clients", "Connected WebSocket clients", value=c.subscribers)
            yield CounterMetricFamily("fieldline_ws_messages_published", "Messages pushed to WebSocket clients",
                                      value=c.published)
            yield CounterMetricFamily("fieldline_ws_messages_dropped",
                                      "Messages dropped because a WebSocket client lagged", value=c.dropped)
        timeseries = getattr(state, "timeseries", None)
        if timeseries is not None:
            yield from self._timeseries(timeseries.stats())
        store = getattr(state, "store", None)
        if store is not None and hasattr(store, "listener_errors"):
            yield CounterMetricFamily("fieldline_store_listener_errors", "Store change listeners that raised",
                                      value=store.listener_errors)

    @staticmethod
    def _ingest(worker: object) -> Iterator[Metric]:
        yield GaugeMetricFamily("fieldline_ingest_enabled", "1 when the MQTT ingest worker runs",
                                value=int(worker is not None))
        if worker is None:
            return
        c = worker.counters()  # type: ignore[attr-defined]
        yield GaugeMetricFamily("fieldline_ingest_mqtt_connected", "1 while subscribed to the broker",
                                value=int(worker.connected))  # type: ignore[attr-defined]
        for name, doc, value in (
            ("received", "MQTT messages delivered by the broker", c.received),
            ("stored", "Messages persisted (new events, alerts, statuses, stats, snapshots)", c.stored),
            ("duplicates", "Events and alerts whose id was already stored", c.duplicates),
            ("id_collisions", "Events stored under a derived id: their id was stored with other content",
             c.id_collisions),
            ("ignored", "Messages not for the cloud (cmd topics) or stale statuses", c.ignored),
            ("store_errors", "Messages lost because the database write failed twice", c.store_errors),
        ):
            yield CounterMetricFamily(f"fieldline_ingest_{name}", doc, value=value)
        dead = CounterMetricFamily("fieldline_ingest_dead_letters",
                                   "Messages that failed validation, by reason class", labels=["reason_class"])
        by_class = c.dead_letters_by_class
        for cls in sorted(set(REASON_CLASSES) | set(by_class)):
            dead.add_metric([cls], by_class.get(cls, 0))
        yield dead
        yield GaugeMetricFamily("fieldline_ingest_queue_depth", "Messages received but not yet written",
                                value=worker.queue_depth)  # type: ignore[attr-defined]
        if c.last_event_ts_ms is not None:
            yield GaugeMetricFamily(
                "fieldline_ingest_lag_seconds",
                "Now minus the capture time of the newest event in the last batch that stored an event",
                value=max(0.0, time.time() - c.last_event_ts_ms / 1000),
            )
            yield GaugeMetricFamily("fieldline_ingest_last_event_timestamp_seconds",
                                    "Capture time of that event (epoch seconds)", value=c.last_event_ts_ms / 1000)
        if c.write_latency_counts:
            cumulative, buckets = 0, []
            for bound, n in zip((*WRITE_LATENCY_BUCKETS, float("inf")), c.write_latency_counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            yield HistogramMetricFamily("fieldline_store_write_seconds",
                                        "Duration of one batched store write (one SQLite transaction)",
                                        buckets=buckets, sum_value=c.write_latency_sum_s)

    @staticmethod
    def _timeseries(s: object) -> Iterator[Metric]:
        labels = ["backend"]
        values = [s.backend]  # type: ignore[attr-defined]
        for name, doc, value, family in (
            ("points_written", "Points the time-series server accepted", s.points_written, CounterMetricFamily),  # type: ignore[attr-defined]
            ("points_dropped", "Points given up (buffer overflow during an outage, or rejected)", s.points_dropped, CounterMetricFamily),  # type: ignore[attr-defined]
            ("write_failures", "Failed time-series write requests (retried with backoff)", s.write_failures, CounterMetricFamily),  # type: ignore[attr-defined]
            ("pending_points", "Points waiting in the time-series buffer", s.pending, GaugeMetricFamily),  # type: ignore[attr-defined]
        ):
            metric = family(f"fieldline_timeseries_{name}", doc, labels=labels)
            metric.add_metric(values, value)
            yield metric


def build_registry(app: FastAPI) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FieldLineCollector(app))
    return registry
