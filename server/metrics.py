"""Prometheus metrics of the gRPC server, on their own registry and HTTP port.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` durations, base units); texts
per second is ``rate(sentiment_texts_processed_total[1m])``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sentiment.common import __version__
from sentiment.common.metrics import LATENCY_BUCKETS

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("sentiment_grpc_requests_total", "gRPC calls by method and status code",
                                ["method", "code"], registry=r)
        self.request_seconds = Histogram("sentiment_grpc_request_duration_seconds", "End-to-end time of a gRPC call",
                                         ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait_seconds = Histogram("sentiment_queue_wait_seconds", "Time a text waited in the batch queue",
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.inference_seconds = Histogram("sentiment_inference_duration_seconds", "Time of one batched forward pass",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("sentiment_batch_size", "Texts per forward pass", buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("sentiment_batch_tokens", "Padded tokens per forward pass", buckets=TOKEN_BUCKETS,
                                      registry=r)
        self.texts = Counter("sentiment_texts_processed_total", "Texts run through the model", registry=r)
        self.queue_depth = Gauge("sentiment_queue_depth", "Texts waiting for the model", registry=r)
        self.model_info = Info("sentiment_model", "The served model", registry=r)

    def observe_batch(self, size: int, padded_tokens: int, waits: list[float], seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_tokens.observe(padded_tokens)
        self.inference_seconds.observe(seconds)
        self.texts.inc(size)
        for wait in waits:
            self.queue_wait_seconds.observe(wait)

    def watch_core(self, core) -> None:
        """Read the core's queue depth, learned batch costs, int8 re-check counts and model facts at scrape
        time (the core does not know these metrics exist)."""
        batcher = core.batcher
        self.queue_depth.set_function(lambda: batcher.queue_depth)
        self.watch_batch_costs(batcher.cost_estimates)
        self.watch_recheck(core.recheck_info)
        c = core.classifier
        self.model_info.info({"model": c.name, "source": c.source, "dtype": c.dtype_name, "device": c.device_name,
                              "version": __version__, "weights_sha256": c.weights_sha256[:16]})

    def watch_batch_costs(self, estimates: Callable[[], dict]) -> None:
        """Export the batcher's learned cost per engine, read at scrape time."""
        self.registry.register(_BatchCostCollector(estimates))

    def watch_recheck(self, recheck: Callable[[], object]) -> None:
        """Export how many texts int8 re-checked in float32 (``server.engines.recheck``), read at scrape time."""
        self.registry.register(_RecheckCollector(recheck))

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


class _BatchCostCollector(Collector):
    TERMS = (("fixed", "fixed_seconds"), ("per_token", "seconds_per_token"),
             ("per_token_width", "seconds_per_token_width"))

    def __init__(self, estimates: Callable[[], dict]):
        self.estimates = estimates

    def collect(self):
        family = GaugeMetricFamily(
            "sentiment_batch_cost_seconds",
            "Learned cost of a batch per engine: seconds = fixed + per_token x padded tokens"
            " + per_token_width x padded tokens x width",
            labels=["engine", "term"])
        for engine, estimate in self.estimates().items():
            for term, attribute in self.TERMS:
                family.add_metric([engine, term], getattr(estimate, attribute))
        yield family


class _RecheckCollector(Collector):
    def __init__(self, recheck: Callable[[], object]):
        self.recheck = recheck

    def collect(self):
        info = self.recheck()
        if info is None:
            return
        texts = CounterMetricFamily("sentiment_int8_texts", "Texts the int8 engine ran (warm-up included)")
        texts.add_metric([], info.texts)
        rechecked = CounterMetricFamily(
            "sentiment_int8_rechecked_texts",
            "Texts whose int8 answer was within the re-check margin of another answer and ran again in float32")
        rechecked.add_metric([], info.rechecked)
        yield texts
        yield rechecked
