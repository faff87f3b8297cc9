"""Per-call bookkeeping in one place: the request id, metrics by method and code, an optional access log
and, with tracing on, a server span.

It wraps the servicers' methods once, when they are registered, instead of being a gRPC server
interceptor: with an interceptor, grpc.aio runs the interceptor chain as Python coroutines on every call
and builds a new method handler per call; measured at 32 callers on the tiny test model, dropping the
interceptor took the server's CPU outside the model from 1.6-1.9 to 1.2 ms per call, and the access log
line (JSON formatting and a write per call) was another 0.3 ms of it, so it is off unless
``--access-log`` asks for it. The request id travels in the trailing metadata, which goes out with the
status anyway (initial metadata sent on its own is one more operation through gRPC core: 0.2 ms per
call, measured)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid

import grpc
from opentelemetry import trace

from sentiment.common.tracing import incoming_context, tracer, tracing_enabled
from server.metrics import ServerMetrics

log = logging.getLogger("sentiment.access")

REQUEST_ID = "x-request-id"


def _code_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, asyncio.CancelledError) else "UNKNOWN"


def _request_id(metadata) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID and value:
            return value
    return uuid.uuid4().hex


class CallObserver:
    """Counts and times every call of the servicers it wraps (``observe``), by method and final code."""

    def __init__(self, metrics: ServerMetrics | None, service: str, access_log: bool = False):
        self.metrics = metrics
        self.service = service
        self.access_log = access_log
        self._counters: dict[tuple[str, str], object] = {}
        self._timers: dict[str, object] = {}

    def observe(self, servicer):
        """A stand-in for ``servicer`` whose RPC methods (capitalised attributes) are wrapped; pass it to
        the generated ``add_..._to_server``, which reads each method once."""
        return _Observed(servicer, self)

    def _finish(self, method: str, request_id: str, context, started: float, error: BaseException | None) -> None:
        code = _code_name(context, error)
        seconds = time.perf_counter() - started
        self.record(method, code, seconds, request_id)

    def record(self, method: str, code: str, seconds: float = 0.0, request_id: str = "") -> None:
        """Count one call (and log it with ``--access-log``); also for calls refused before a servicer ran."""
        if self.metrics is not None:
            counter = self._counters.get((method, code))
            if counter is None:
                counter = self._counters[method, code] = self.metrics.requests.labels(method, code)
            timer = self._timers.get(method)
            if timer is None:
                timer = self._timers[method] = self.metrics.request_seconds.labels(method)
            counter.inc()
            timer.observe(seconds)
        if self.access_log:
            log.info("%s %s", method, code, extra={"request_id": request_id, "method": method, "code": code,
                                                   "duration_ms": round(seconds * 1000, 2)})

    def _span(self, method: str, request_id: str, metadata):
        if not tracing_enabled():
            return contextlib.nullcontext()
        span = tracer().start_span(f"{self.service}/{method}", context=incoming_context(metadata),
                                   kind=trace.SpanKind.SERVER,
                                   attributes={"rpc.system": "grpc", "rpc.method": method, "request_id": request_id})
        return trace.use_span(span, end_on_exit=True)

    @staticmethod
    def _begin(context) -> tuple[float, tuple, str]:
        """Start a call's bookkeeping: its clock, its metadata and its request id (sent back in the trailers)."""
        started = time.perf_counter()
        metadata = context.invocation_metadata()
        request_id = _request_id(metadata)
        context.set_trailing_metadata(((REQUEST_ID, request_id),))
        return started, metadata, request_id

    def wrap(self, method: str, inner):
        if inspect.isasyncgenfunction(inner):
            async def streaming(request_iterator, context):
                started, metadata, request_id = self._begin(context)
                error = None
                try:
                    with self._span(method, request_id, metadata):
                        async for response in inner(request_iterator, context):
                            yield response
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    self._finish(method, request_id, context, started, error)

            return streaming

        async def unary(request, context):
            started, metadata, request_id = self._begin(context)
            error = None
            try:
                if tracing_enabled():
                    with self._span(method, request_id, metadata):
                        return await inner(request, context)
                return await inner(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._finish(method, request_id, context, started, error)

        return unary


class _Observed:
    def __init__(self, servicer, observer: CallObserver):
        self._servicer = servicer
        self._observer = observer

    def __getattr__(self, name: str):
        attribute = getattr(self._servicer, name)
        # the RPCs we implement; the generated base class's UNIMPLEMENTED stubs (plain functions) stay as they are
        if name[:1].isupper() and (inspect.iscoroutinefunction(attribute) or inspect.isasyncgenfunction(attribute)):
            return self._observer.wrap(name, attribute)
        return attribute
