"""InfluxDB time-series writer (influxdb-client), fed after the SQLite commit of each event.

Points (write precision ms, time = the event's capture time ``ts_ms``):

- ``counts``: tags site, device, camera, zone, row (absent when the event has no row), label; field
  ``n`` (int). One point per label of a ``count`` event.
- ``inspections``: tags site, device, line (the zone id), verdict (pass | reject); fields ``parts`` (always
  1, so a sum counts parts), ``defects`` (number of defects on the part) and ``defect_<label>`` per defect
  class (from the event's ``counts``, else counted from its detections). One point per ``inspection``.

Batching and failure handling are done here, on top of the client's synchronous write call: points wait in
a bounded in-memory buffer and go out in batches of ``batch_size`` at least every ``flush_interval_s``. A
failed request is retried with exponential backoff (``retry_min_s`` .. ``retry_max_s``) until the server is
back, so an outage loses nothing unless the buffer overflows (oldest points dropped and counted). A request
the server rejects as malformed (HTTP 4xx other than 401/403/404/408/429) is dropped and counted, not
retried for ever. (The client's own batching mode keeps an unbounded queue in its rx pipeline and drops a
batch after its retries, so we do not use it.) SQLite stays the source of truth: ingestion never waits here.

Reads need Flux, which the test server (VictoriaMetrics) does not speak: ``counts_flux`` only builds the
query text for a trend, to be run by ``query_api().query(...)`` against a real InfluxDB 2.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from fieldline.contract import Event, Telemetry

from cloud_api.core.config import Settings
from cloud_api.storage.timeseries import TimeSeriesStats

log = logging.getLogger(__name__)

COUNTS = "counts"
CLIMATE = "climate"
INSPECTIONS = "inspections"
_RETRYABLE_4XX = {401, 403, 404, 408, 429}  # auth/bucket problems an operator can fix, or back-off requests


def telemetry_point(reading: Telemetry) -> Point:
    """``climate``: tags site, shed, sensor, device, quantity; field ``value`` in °C or % (canonical unit)."""
    return (
        Point(CLIMATE).tag("site", reading.site).tag("shed", reading.shed).tag("sensor", reading.sensor)
        .tag("device", reading.device).tag("quantity", reading.quantity).field("value", reading.canonical_value())
        .time(reading.ts_ms, WritePrecision.MS)
    )


def _n_points(item: Event | Telemetry) -> int:
    return 1 if isinstance(item, Telemetry) else len(item.counts) or 1


def event_points(event: Event | Telemetry) -> list[Point]:
    """The InfluxDB points of one stored event or climate reading (none for kinds that are not time series)."""
    if isinstance(event, Telemetry):
        return [telemetry_point(event)]
    if event.kind == "count":
        points = []
        for label, n in sorted(event.counts.items()):
            point = (
                Point(COUNTS).tag("site", event.site).tag("device", event.device).tag("camera", event.camera)
                .tag("zone", event.zone.id).tag("label", label).field("n", int(n))
                .time(event.ts_ms, WritePrecision.MS)
            )
            if event.zone.row is not None:
                point.tag("row", event.zone.row)
            points.append(point)
        return points
    if event.kind == "inspection" and event.verdict is not None:
        defects = dict(event.counts)
        if not defects:
            for detection in event.detections:
                defects[detection.label] = defects.get(detection.label, 0) + 1
        point = (
            Point(INSPECTIONS).tag("site", event.site).tag("device", event.device).tag("line", event.zone.id)
            .tag("verdict", event.verdict).field("parts", 1).field("defects", sum(defects.values()))
            .time(event.ts_ms, WritePrecision.MS)
        )
        for label, n in sorted(defects.items()):
            point.field(f"defect_{label}", int(n))
        return [point]
    return []


def _flux_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def _flux_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def counts_flux(bucket: str, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int) -> str:
    """Flux for a shed's count trend: per window, the last count of each series, summed per label.

    The same semantics as ``GET /sheds/{id}/counts`` on SQLite. Not testable here (no Flux engine).
    """
    return (
        f"from(bucket: {_flux_string(bucket)})\n"
        f"  |> range(start: {_flux_time(from_ms)}, stop: {_flux_time(to_ms)})\n"
        f'  |> filter(fn: (r) => r._measurement == "{COUNTS}" and r._field == "n" and r.zone == {_flux_string(shed_id)})\n'
        f"  |> aggregateWindow(every: {int(bucket_ms)}ms, fn: last, createEmpty: false, timeSrc: \"_start\")\n"
        '  |> group(columns: ["_time", "label"])\n'
        "  |> sum()\n"
        '  |> group(columns: ["label"])\n'
        '  |> sort(columns: ["_time"])\n'
    )


class InfluxTimeSeries:
    """Buffer points of newly stored events and write them to InfluxDB from one background thread."""

    backend = "influx"

    def __init__(
        self,
        *,
        url: str,
        token: str | None,
        org: str,
        bucket: str,
        batch_size: int = 1000,
        flush_interval_s: float = 1.0,
        buffer_max: int = 200_000,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self._token = token or ""
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._buffer_max = buffer_max
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._timeout_ms = int(timeout_s * 1000)
        self._events: collections.deque[Event | Telemetry] = collections.deque()  # accepted, not yet turned into points
        self._lines: collections.deque[str] = collections.deque()  # line protocol waiting to be sent
        self._cond = threading.Condition()
        self._in_flight = 0
        self._flush_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._client: InfluxDBClient | None = None
        self._written = self._dropped = self._failures = 0
        self._last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxTimeSeries:
        return cls(
            url=settings.influx_url,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            org=settings.influx_org, bucket=settings.influx_bucket, batch_size=settings.influx_batch_size,
            flush_interval_s=settings.influx_flush_interval_s, buffer_max=settings.influx_buffer_max,
            retry_min_s=settings.influx_retry_min_s, retry_max_s=settings.influx_retry_max_s,
            timeout_s=settings.influx_timeout_s,
        )

    # ------------------------------------------------------------ TimeSeriesStore

    def start(self) -> None:
        if self._thread is not None:
            return
        self._client = InfluxDBClient(url=self.url, token=self._token, org=self.org, timeout=self._timeout_ms)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fieldline-influx-writer", daemon=True)
        self._thread.start()

    def write(self, events: Sequence[Event | Telemetry]) -> None:
        with self._cond:
            self._events.extend(events)
            overflow = len(self._events) + len(self._lines) - self._buffer_max
            while overflow > 0 and self._events:  # too much waiting: the oldest go first
                self._dropped += _n_points(self._events.popleft())
                overflow -= 1
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._events and not self._lines and not self._in_flight,
                max(0.0, deadline - time.monotonic()),
            )

    def close(self, timeout: float = 5.0) -> None:
        """Try to send what is buffered for up to ``timeout`` s, then stop (the rest is counted as dropped)."""
        if self._thread is None:
            return
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout + self._timeout_ms / 1000)
        self._thread = None
        with self._cond:
            left = len(self._lines) + sum(_n_points(e) for e in self._events)
            self._dropped += left
            self._lines.clear()
            self._events.clear()
        if left:
            log.warning("InfluxDB writer stopped with %d points unsent", left)
        if self._client is not None:
            self._client.close()
            self._client = None

    def stats(self) -> TimeSeriesStats:
        with self._cond:
            return TimeSeriesStats(
                backend=self.backend, points_written=self._written, points_dropped=self._dropped,
                write_failures=self._failures, pending=len(self._lines) + len(self._events),
                last_error=self._last_error,
            )

    def counts_flux(self, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int) -> str:
        return counts_flux(self.bucket, shed_id, from_ms, to_ms, bucket_ms)

    # ------------------------------------------------------------ thread

    def _pending(self) -> int:
        return len(self._lines) + len(self._events)

    def _next_batch(self) -> list[str] | None:
        """Wait for a full batch, the flush interval or a flush request; None when stopping."""
        with self._cond:
            deadline = time.monotonic() + self._flush_interval_s
            while not self._stopping and self._pending() < self._batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._flush_requested:
                    if self._pending():
                        break
                    self._flush_requested = False
                    deadline = time.monotonic() + self._flush_interval_s
                    continue
                self._cond.wait(remaining)
            if self._stopping:
                return None
            events = [self._events.popleft() for _ in range(min(len(self._events), self._batch_size))]
            self._in_flight = max(1, len(events))
        lines = [p.to_line_protocol() for e in events for p in event_points(e)]
        with self._cond:
            self._lines.extend(lines)
            batch = [self._lines.popleft() for _ in range(min(len(self._lines), self._batch_size))]
            self._in_flight = len(batch)
            if not self._pending():
                self._flush_requested = False
        return batch

    def _run(self) -> None:
        assert self._client is not None
        api = self._client.write_api(write_options=SYNCHRONOUS)
        attempt = 0
        batch: list[str] | None = None
        while True:
            if batch is None:
                batch = self._next_batch()
                if batch is None:
                    return
                if not batch:
                    with self._cond:
                        self._in_flight = 0
                        self._cond.notify_all()
                    batch = None
                    continue
            try:
                api.write(bucket=self.bucket, org=self.org, record=batch, write_precision=WritePrecision.MS)
            except Exception as exc:  # noqa: BLE001 - any failure is counted and retried, never raised
                rejected = isinstance(exc, ApiException) and 400 <= (exc.status or 0) < 500 \
                    and exc.status not in _RETRYABLE_4XX
                with self._cond:
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                    if rejected:
                        self._dropped += len(batch)
                if rejected:
                    log.error("InfluxDB rejected %d points: %s", len(batch), exc)
                    batch, attempt = None, 0
                    with self._cond:
                        self._in_flight = 0
                        self._cond.notify_all()
                    continue
                delay = min(self._retry_max_s, self._retry_min_s * 2 ** attempt)
                attempt += 1
                if attempt == 1:
                    log.warning("InfluxDB write of %d points failed (%s); retrying with backoff", len(batch), exc)
                with self._cond:
                    if self._cond.wait_for(lambda: self._stopping, delay):
                        self._lines.extendleft(reversed(batch))  # keep them counted as unsent
                        self._in_flight = 0
                        return
                continue
            with self._cond:
                self._written += len(batch)
                self._in_flight = 0
                if attempt:
                    log.info("InfluxDB writes resumed after %d failed attempts", attempt)
                self._cond.notify_all()
            batch, attempt = None, 0
