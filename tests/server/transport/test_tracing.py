"""Tracing: a bridge span is the parent of the server span (in-memory exporter, no collector)."""

from __future__ import annotations

import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.bridge import BridgeThread


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another tracer provider was set first in this process")
    return exporter


def test_bridge_span_is_the_parent_of_the_server_span(spans, grpc_server):
    with BridgeThread(grpc_server.target) as bridge:
        response = requests.post(f"{bridge.url}/predict", json={"text": "i love this"}, timeout=10,
                                 headers={"X-Request-Id": "span-check"})
    assert response.status_code == 200
    finished = {span.name: span for span in spans.get_finished_spans()}
    parent, child = finished["POST /predict"], finished["sentiment.v1.SentimentService/Predict"]
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert child.attributes["request_id"] == parent.attributes["request_id"] == "span-check"
    assert child.kind == trace.SpanKind.SERVER
