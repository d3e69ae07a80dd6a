"""`GET /metrics`: Prometheus text from prometheus-client, in a registry of the app's own (two
apps in one process, as in the tests, never share counters).

Requests by route and status, images answered by status (`ok` scored, `error` unreadable),
the latency of `POST /v1/scan`, what the admission holds (the queue depth), images waiting for a
batch, and batches scored with the images in them (their ratio is the mean batch size).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from scanner.serve.service import ScanService

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, service: ScanService) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "facescan_http_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=registry,
        )
        self.images = Counter(
            "facescan_images",
            "Images answered: ok (scored) or error (could not be read)",
            ["status"],
            registry=registry,
        )
        self.latency = Histogram(
            "facescan_scan_seconds",
            "Time from request to answer of POST /v1/scan (answers of every status)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        admission = service.admission
        queue = Gauge(
            "facescan_queue_images",
            "Images held: admitted and not yet answered (503 past --queue)",
            registry=registry,
        )
        queue.set_function(lambda: admission.images)
        held = Gauge("facescan_buffered_bytes", "Upload bytes held", registry=registry)
        held.set_function(lambda: admission.bytes)
        waiting = Gauge(
            "facescan_batch_queue_images", "Images waiting for a batch", registry=registry
        )
        waiting.set_function(lambda: service.engine.queued)
        registry.register(BatchCollector(service))
        # The children exist from the start, so a scrape shows zeros rather than nothing.
        for status in ("ok", "error"):
            self.images.labels(status)

    def count_rows(self, rows: list[dict[str, Any]]) -> None:
        for values in rows:
            self.images.labels(values["status"]).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class BatchCollector(Collector):
    """The batcher's own counters, read at scrape time."""

    def __init__(self, service: ScanService) -> None:
        self.engine = service.engine

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "facescan_batches", "Inference batches scored", value=self.engine.batches
        )
        yield CounterMetricFamily(
            "facescan_batched_images", "Images scored in those batches", value=self.engine.images
        )
