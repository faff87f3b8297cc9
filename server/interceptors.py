"""Per-call bookkeeping in one place: the request id, metrics by method and code, and an access log."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

import grpc
from opentelemetry import trace

from server.metrics import ServerMetrics
from sentiment.common.tracing import incoming_context, tracer, tracing_enabled

log = logging.getLogger("sentiment.access")

REQUEST_ID = "x-request-id"


def _code_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, BaseException) and type(error).__name__ == "CancelledError" else "UNKNOWN"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Takes ``x-request-id`` from the call (or makes one), returns it in the trailing metadata,
    counts the call by method and final status code, times it, and logs one JSON line.

    It runs on every call, so it keeps to the cheap path: the id travels in the trailers, which go out
    with the status anyway (sending initial metadata on its own is one more operation through gRPC core
    per call: 0.2 ms of the server's CPU per call, measured); the metric children are looked up once per
    (method, code); no trace context is read and no span started while tracing is off."""

    def __init__(self, metrics: ServerMetrics):
        self.metrics = metrics
        self._counters: dict[tuple[str, str], object] = {}
        self._timers: dict[str, object] = {}

    def _count(self, method: str, code: str, seconds: float) -> None:
        counter = self._counters.get((method, code))
        if counter is None:
            counter = self._counters[method, code] = self.metrics.requests.labels(method, code)
        timer = self._timers.get(method)
        if timer is None:
            timer = self._timers[method] = self.metrics.request_seconds.labels(method)
        counter.inc()
        timer.observe(seconds)

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith("/grpc.health.v1.Health/"):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        request_id = next((v for k, v in details.invocation_metadata or () if k == REQUEST_ID), None) or uuid.uuid4().hex

        def span():
            if not tracing_enabled():
                return contextlib.nullcontext()
            span = tracer().start_span(details.method.lstrip("/"), context=incoming_context(details.invocation_metadata),
                                       kind=trace.SpanKind.SERVER,
                                       attributes={"rpc.system": "grpc", "rpc.method": method, "request_id": request_id})
            return trace.use_span(span, end_on_exit=True)

        def finish(context, started: float, error: BaseException | None) -> None:
            code = _code_name(context, error)
            seconds = time.perf_counter() - started
            self._count(method, code, seconds)
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s", method, code, extra={"request_id": request_id, "method": method, "code": code,
                                                       "duration_ms": round(seconds * 1000, 2)})

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request, context):
                started, error = time.perf_counter(), None
                context.set_trailing_metadata(((REQUEST_ID, request_id),))
                try:
                    with span():
                        return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(context, started, error)

            return handler._replace(unary_unary=unary)
        if handler.stream_stream:
            inner_stream = handler.stream_stream

            async def stream(request_iterator, context):
                started, error = time.perf_counter(), None
                context.set_trailing_metadata(((REQUEST_ID, request_id),))
                try:
                    with span():
                        async for response in inner_stream(request_iterator, context):
                            yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(context, started, error)

            return handler._replace(stream_stream=stream)
        return handler
