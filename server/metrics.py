"""Prometheus metrics of the gRPC server, on their own registry and HTTP port.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` durations, base units); texts
per second is ``rate(sentiment_texts_processed_total[1m])``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sentiment.common import __version__
from sentiment.common.metrics import LATENCY_BUCKETS

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384)


MODEL_LABELS = ["model", "version"]


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("sentiment_grpc_requests_total", "gRPC calls by method and status code",
                                ["method", "code"], registry=r)
        self.request_seconds = Histogram("sentiment_grpc_request_duration_seconds", "End-to-end time of a gRPC call",
                                         ["method"], buckets=LATENCY_BUCKETS, registry=r)
        # per model version (labels model, version): what its own batcher and engines did
        self.queue_wait_seconds = Histogram("sentiment_queue_wait_seconds", "Time a text waited in the batch queue",
                                            MODEL_LABELS, buckets=LATENCY_BUCKETS, registry=r)
        self.inference_seconds = Histogram("sentiment_inference_duration_seconds", "Time of one batched forward pass",
                                           MODEL_LABELS, buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("sentiment_batch_size", "Texts per forward pass", MODEL_LABELS,
                                    buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("sentiment_batch_tokens", "Padded tokens per forward pass", MODEL_LABELS,
                                      buckets=TOKEN_BUCKETS, registry=r)
        self.texts = Counter("sentiment_texts_processed_total", "Texts run through the model", MODEL_LABELS, registry=r)

    def batch_observer(self, model: str, version: str) -> Callable[[int, int, list[float], float], None]:
        """The ``on_batch`` of one model version's batcher: its metrics, with their labels bound once."""
        size, tokens = self.batch_size.labels(model, version), self.batch_tokens.labels(model, version)
        seconds, texts = self.inference_seconds.labels(model, version), self.texts.labels(model, version)
        wait = self.queue_wait_seconds.labels(model, version)

        def observe_batch(count: int, padded_tokens: int, waits: list[float], elapsed: float) -> None:
            size.observe(count)
            tokens.observe(padded_tokens)
            seconds.observe(elapsed)
            texts.inc(count)
            for queued in waits:
                wait.observe(queued)

        return observe_batch

    def watch_models(self, loaded: Callable[[], list]) -> None:
        """Read every loaded version's queue depth, learned batch costs, int8 re-check counts and model facts
        at scrape time. ``loaded()``: (name, version, core) of each (the cores do not know these metrics)."""
        for collector in (_QueueDepthCollector, _ModelInfoCollector, _BatchCostCollector, _RecheckCollector):
            self.registry.register(collector(loaded))

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics over HTTP; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.http_server = server
        return server.server_port

    def close(self) -> None:
        server = getattr(self, "http_server", None)
        if server:
            server.shutdown()
            server.server_close()


class _QueueDepthCollector(Collector):
    def __init__(self, loaded: Callable[[], list]):
        self.loaded = loaded

    def collect(self):
        family = GaugeMetricFamily("sentiment_queue_depth", "Texts waiting for the model", labels=MODEL_LABELS)
        for name, version, core in self.loaded():
            family.add_metric([name, version], core.batcher.queue_depth)
        yield family


class _ModelInfoCollector(Collector):
    LABELS = ["model", "version", "source", "dtype", "device", "engine", "weights_sha256", "server_version"]

    def __init__(self, loaded: Callable[[], list]):
        self.loaded = loaded

    def collect(self):
        family = GaugeMetricFamily("sentiment_model_info", "Every loaded model version (value 1)", labels=self.LABELS)
        for name, version, core in self.loaded():
            c = core.classifier
            family.add_metric([name, version, c.source, c.dtype_name, c.device_name, c.engine_name,
                               c.weights_sha256[:16], __version__], 1)
        yield family


class _BatchCostCollector(Collector):
    TERMS = (("fixed", "fixed_seconds"), ("per_token", "seconds_per_token"),
             ("per_token_width", "seconds_per_token_width"))

    def __init__(self, loaded: Callable[[], list]):
        self.loaded = loaded

    def collect(self):
        family = GaugeMetricFamily(
            "sentiment_batch_cost_seconds",
            "Learned cost of a batch per engine: seconds = fixed + per_token x padded tokens"
            " + per_token_width x padded tokens x width",
            labels=[*MODEL_LABELS, "engine", "term"])
        for name, version, core in self.loaded():
            for engine, estimate in core.batcher.cost_estimates().items():
                for term, attribute in self.TERMS:
                    family.add_metric([name, version, engine, term], getattr(estimate, attribute))
        yield family


class _RecheckCollector(Collector):
    def __init__(self, loaded: Callable[[], list]):
        self.loaded = loaded

    def collect(self):
        texts = CounterMetricFamily("sentiment_int8_texts", "Texts the int8 engine ran (warm-up included)",
                                    labels=MODEL_LABELS)
        rechecked = CounterMetricFamily(
            "sentiment_int8_rechecked_texts",
            "Texts whose int8 answer was within the re-check margin of another answer and ran again in float32",
            labels=MODEL_LABELS)
        for name, version, core in self.loaded():
            info = core.recheck_info()
            if info is not None:
                texts.add_metric([name, version], info.texts)
                rechecked.add_metric([name, version], info.rechecked)
        yield texts
        yield rechecked
