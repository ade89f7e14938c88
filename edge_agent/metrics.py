"""Prometheus ``/metrics`` for the edge agent, read from the agent's own counters at scrape time.

A custom collector (instead of counters incremented in the hot path) means nothing is counted twice and
the camera loop pays nothing for observability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from edge_agent.agent import Agent


class AgentCollector:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self):
        agent = self.agent
        frames = CounterMetricFamily("fieldline_edge_frames", "Frames read per camera", labels=["camera"])
        skipped = CounterMetricFamily("fieldline_edge_frames_skipped",
                                      "Frames skipped (corrupt or undecodable) per camera", labels=["camera"])
        events = CounterMetricFamily("fieldline_edge_events", "Events produced per camera", labels=["camera"])
        latency = GaugeMetricFamily("fieldline_edge_detect_latency_ms", "Detector latency over recent frames",
                                    labels=["camera", "quantile"])
        for name, c in agent.counters.items():
            frames.add_metric([name], c.frames)
            skipped.add_metric([name], c.skipped_frames)
            events.add_metric([name], c.events)
            recent = list(c.detect_ms)
            if recent:
                for q in (0.5, 0.95):
                    latency.add_metric([name, str(q)], float(np.quantile(recent, q)))
        yield from (frames, skipped, events, latency)
        stats = agent.stats()
        yield GaugeMetricFamily("fieldline_edge_fps", "Frames per second since start, all cameras", value=stats.fps)
        yield GaugeMetricFamily("fieldline_edge_spool_depth", "Events waiting in the outbox",
                                value=stats.spool_depth)
        yield CounterMetricFamily("fieldline_edge_spool_dropped", "Events dropped by the spool cap",
                                  value=agent.spool.dropped)
        yield CounterMetricFamily("fieldline_edge_published", "Messages acknowledged by the broker",
                                  value=agent.publisher.published)
        yield CounterMetricFamily("fieldline_edge_reconnects", "Broker reconnects", value=agent.publisher.reconnects)
        yield GaugeMetricFamily("fieldline_edge_connected", "1 when connected to the broker",
                                value=1.0 if agent.publisher.connected else 0.0)
        yield CounterMetricFamily("fieldline_edge_snapshots_refused", "Snapshots refused by the bandwidth budget",
                                  value=agent.snapshot_budget.refused)
        yield CounterMetricFamily("fieldline_edge_commands_rejected", "Malformed commands",
                                  value=agent.commands.rejected)


def serve_metrics(agent: Agent, port: int, host: str = "127.0.0.1"):
    """Start the HTTP exporter in a daemon thread; returns (server, thread)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    return start_http_server(port, addr=host, registry=registry)
