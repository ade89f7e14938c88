"""Prometheus ``/metrics`` for the edge agent, read from the agent's own counters at scrape time.

A custom collector (instead of counters incremented in the hot path) means nothing is counted twice and
the camera loop pays nothing for observability. The collector sees the agent only through
:class:`MetricsSource`, so this module does not import the agent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge_agent.camera_loop import CameraCounters
from fieldline.contract import DeviceStats


@dataclass(frozen=True)
class AgentCounters:
    """The agent-wide counters the exporter shows, read at one moment."""

    spool_dropped: int
    published: int
    reconnects: int
    connected: bool
    snapshots_refused: int
    commands_rejected: int
    commands_repeated: int
    samples: dict[str, int] = field(default_factory=dict)  # frames sent for the datasets, by reason
    samples_suppressed: dict[str, int] = field(default_factory=dict)  # picked but not sent: interval, duplicate, budget


class MetricsSource(Protocol):
    """What the exporter reads from the agent."""

    @property
    def counters(self) -> Mapping[str, CameraCounters]: ...

    def stats(self) -> DeviceStats: ...

    def agent_counters(self) -> AgentCounters: ...


class AgentCollector:
    def __init__(self, agent: MetricsSource) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        frames = CounterMetricFamily("fieldline_edge_frames", "Frames read per camera", labels=["camera"])
        skipped = CounterMetricFamily("fieldline_edge_frames_skipped",
                                      "Frames skipped (corrupt or undecodable) per camera", labels=["camera"])
        events = CounterMetricFamily("fieldline_edge_events", "Events produced per camera", labels=["camera"])
        latency = GaugeMetricFamily("fieldline_edge_detect_latency_ms", "Detector latency over recent frames",
                                    labels=["camera", "quantile"])
        for name, c in list(agent.counters.items()):
            frames.add_metric([name], c.frames)
            skipped.add_metric([name], c.skipped_frames)
            events.add_metric([name], c.events)
            recent = list(c.detect_ms)
            if recent:
                for q in (0.5, 0.95):
                    latency.add_metric([name, str(q)], float(np.quantile(recent, q)))
        yield from (frames, skipped, events, latency)
        stats = agent.stats()
        counts = agent.agent_counters()
        yield GaugeMetricFamily("fieldline_edge_fps", "Frames per second since start, all cameras", value=stats.fps)
        yield GaugeMetricFamily("fieldline_edge_spool_depth", "Events waiting in the outbox",
                                value=stats.spool_depth)
        yield CounterMetricFamily("fieldline_edge_spool_dropped", "Events dropped by the spool cap",
                                  value=counts.spool_dropped)
        yield CounterMetricFamily("fieldline_edge_published", "Messages acknowledged by the broker",
                                  value=counts.published)
        yield CounterMetricFamily("fieldline_edge_reconnects", "Broker reconnects", value=counts.reconnects)
        yield GaugeMetricFamily("fieldline_edge_connected", "1 when connected to the broker",
                                value=1.0 if counts.connected else 0.0)
        yield CounterMetricFamily("fieldline_edge_snapshots_refused", "Snapshots refused by the bandwidth budget",
                                  value=counts.snapshots_refused)
        yield CounterMetricFamily("fieldline_edge_commands_rejected", "Malformed commands",
                                  value=counts.commands_rejected)
        yield CounterMetricFamily("fieldline_edge_commands_repeated",
                                  "Commands received again with a request id already answered (not re-run)",
                                  value=counts.commands_repeated)
        samples = CounterMetricFamily("fieldline_edge_samples", "Frames sent for labelling, by sampling reason",
                                      labels=["reason"])
        for reason, n in sorted(counts.samples.items()):
            samples.add_metric([reason], n)
        yield samples
        suppressed = CounterMetricFamily("fieldline_edge_samples_suppressed",
                                         "Sample frames not sent: interval, duplicate or budget", labels=["why"])
        for why, n in sorted(counts.samples_suppressed.items()):
            suppressed.add_metric([why], n)
        yield suppressed


def serve_metrics(agent: MetricsSource, port: int, host: str = "127.0.0.1") -> tuple[Any, Any]:
    """Start the HTTP exporter in a daemon thread; returns (server, thread)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))  # type: ignore[arg-type]  # prometheus types want a Collector
    return start_http_server(port, addr=host, registry=registry)
