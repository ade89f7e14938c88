"""MQTT ingest: subscribe, validate against the wire contract, dedup, store in batches."""

from cloud_api.ingest.counters import IngestCounters, IngestCountersSnapshot
from cloud_api.ingest.worker import IngestWorker

__all__ = ["IngestCounters", "IngestCountersSnapshot", "IngestWorker"]
