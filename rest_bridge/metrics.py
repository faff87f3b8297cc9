"""Prometheus metrics of the bridge. Under gunicorn every worker writes to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by ``sentiment-bridge``) and /metrics adds them up, so a scrape sees
the whole bridge, not one worker."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from sentiment.common.metrics import LATENCY_BUCKETS


class BridgeMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("sentiment_http_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.request_seconds = Histogram("sentiment_http_request_duration_seconds", "End-to-end time of an HTTP request",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.upstream = Counter("sentiment_bridge_upstream_calls_total",
                                "What the backend answered each request, by gRPC status code (requests that shared "
                                "a call count once each)", ["code"], registry=self.registry)
        self.shared_call_texts = Histogram(
            "sentiment_bridge_shared_call_texts", "Texts in each call that one-text /predict requests shared "
            "(--coalesce-calls; a call of 1 went alone)", buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST
