"""Optional OpenTelemetry tracing shared by the server, the bridge and the clients (no torch here).

Off by default: the OpenTelemetry API then hands out no-op spans, so the hooks cost nearly nothing.
``console`` prints finished spans; ``otlp`` exports them with the OTLP exporter (install
``opentelemetry-exporter-otlp`` and set ``OTEL_EXPORTER_OTLP_ENDPOINT``). The W3C ``traceparent``
travels in gRPC metadata, so a bridge span is the parent of the server span."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

TRACER_NAME = "sentiment-service"


def configure_tracing(mode: str, service_name: str) -> None:
    if mode == "off":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if mode == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def tracing_enabled() -> bool:
    """True once a tracer provider is set (by ``configure_tracing`` or by the embedding application)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def server_span(name: str, attributes: dict):
    """A current SERVER span while tracing is on; with tracing off, nothing at all (even a no-op span
    costs a context attach and detach per request)."""
    if not tracing_enabled():
        return contextlib.nullcontext()
    return tracer().start_as_current_span(name, kind=trace.SpanKind.SERVER, attributes=attributes)


def current_context():
    """The active context, for work done for this request on another thread (None while tracing is off)."""
    return otel_context.get_current() if tracing_enabled() else None


@contextlib.contextmanager
def attached(context):
    """Make ``context`` (from ``current_context``) the current one for the block; nothing when None."""
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def outgoing_metadata() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata (empty when there is no active span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def incoming_context(metadata: Iterable[tuple[str, str]] | None):
    return propagate.extract({key: value for key, value in metadata or () if isinstance(value, str)})
