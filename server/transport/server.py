"""The server factory: the gRPC server with both protocols' servicers, health, reflection and the transport
options, bound to its port (port 0 picks a free one), not yet started."""

from __future__ import annotations

import math

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
from server.metrics import ServerMetrics
from server.repository.manager import ModelManager
from server.settings import ServerSettings
from server.transport.health import HealthState
from server.transport.observability import CallObserver
from server.transport.oip_servicer import OIP_SERVICE_NAME, InferenceServicer
from server.transport.security import BearerTokenInterceptor, server_credentials
from server.transport.servicers import SERVICE_NAME, SentimentServicer


def transport_options(settings: ServerSettings) -> list[tuple[str, object]]:
    """gRPC core options: message sizes, connection age, and the time bound on calls gRPC holds for us.

    grpc.aio takes new calls from gRPC core one at a time; when they arrive faster than that (about
    1,000 a second on two cores), the excess waits in core, before any handler can refuse it. Core
    then cancels (CANCELLED) a call still unrequested after ``--max-queue-seconds`` (whole seconds, at
    least 1), so it is never served late; past 1,000 such calls it also drops new ones at random."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        # close connections after 5 minutes (with 30 s to finish calls) so that clients re-resolve DNS
        # and spread over replicas added since they connected
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]
    if settings.max_queue_seconds:
        options.append(("grpc.server_max_unrequested_time_in_server", max(1, math.ceil(settings.max_queue_seconds))))
    return options


def create_server(settings: ServerSettings, models: ModelManager,
                  metrics: ServerMetrics | None = None) -> tuple[grpc.aio.Server, int, HealthState]:
    """Build (not start) the server on ``settings.host:settings.port``; returns it with the bound port."""
    # the only interceptor is the optional token check: per-call bookkeeping wraps the servicers instead
    # (server.transport.observability: an interceptor costs every call a coroutine chain and a new handler)
    sentiment = CallObserver(metrics, SERVICE_NAME, settings.access_log)
    interceptors = [BearerTokenInterceptor(settings.auth_token, on_refused=lambda method: sentiment.record(
        method, "UNAUTHENTICATED"))] if settings.auth_token else []
    server = grpc.aio.server(interceptors=interceptors, options=transport_options(settings))
    pb_grpc.add_SentimentServiceServicer_to_server(sentiment.observe(SentimentServicer(models)), server)
    health_servicer = HealthState()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    oip = CallObserver(metrics, OIP_SERVICE_NAME, settings.access_log)
    oip_grpc.add_GRPCInferenceServiceServicer_to_server(
        oip.observe(InferenceServicer(models, health_servicer, settings.model_control)), server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, OIP_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.port}"
    if settings.tls_cert:
        port = server.add_secure_port(address, server_credentials(settings.tls_cert, settings.tls_key, settings.tls_client_ca))
    else:
        port = server.add_insecure_port(address)
    return server, port, health_servicer


async def set_serving(health_servicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME, OIP_SERVICE_NAME):
        await health_servicer.set(name, status)
