"""Per-call bookkeeping in one place: the request id, metrics by method and code, and an access log."""

from __future__ import annotations

import logging
import time
import uuid

import grpc
from opentelemetry import trace

from server.metrics import ServerMetrics
from server.tracing import incoming_context, tracer

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
    """Takes ``x-request-id`` from the call (or makes one), sends it back in the initial metadata,
    counts the call by method and final status code, times it, and logs one JSON line."""

    def __init__(self, metrics: ServerMetrics):
        self.metrics = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith("/grpc.health.v1.Health/"):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        request_id = dict(details.invocation_metadata or ()).get(REQUEST_ID) or uuid.uuid4().hex
        parent = incoming_context(details.invocation_metadata)

        def start_span():
            span = tracer().start_span(details.method.lstrip("/"), context=parent, kind=trace.SpanKind.SERVER,
                                       attributes={"rpc.system": "grpc", "rpc.method": method, "request_id": request_id})
            return trace.use_span(span, end_on_exit=True)

        def finish(context, started: float, error: BaseException | None) -> None:
            code = _code_name(context, error)
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(method, code).inc()
            self.metrics.request_seconds.labels(method).observe(seconds)
            log.info("%s %s", method, code, extra={"request_id": request_id, "method": method, "code": code,
                                                   "duration_ms": round(seconds * 1000, 2)})

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request, context):
                started, error = time.perf_counter(), None
                await context.send_initial_metadata(((REQUEST_ID, request_id),))
                try:
                    with start_span():
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
                await context.send_initial_metadata(((REQUEST_ID, request_id),))
                try:
                    with start_span():
                        async for response in inner_stream(request_iterator, context):
                            yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(context, started, error)

            return handler._replace(stream_stream=stream)
        return handler
