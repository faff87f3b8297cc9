"""Transport security for the gRPC server: TLS / mutual TLS credentials, and bearer-token auth."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path

import grpc

# Health checks stay open so that probes and load balancers work without the token.
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """TLS with this certificate and key; with ``client_ca``, mutual TLS: clients must present a
    certificate signed by that CA."""
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED."""
    message = "missing or invalid bearer token (send metadata 'authorization: Bearer <token>')"

    async def unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)
    return grpc.unary_unary_rpc_method_handler(unary, **kwargs)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Every call but health checks must carry ``authorization: Bearer <token>``. ``on_refused(method)``
    hears of every call refused (the refusal never reaches the servicers, where calls are counted)."""

    def __init__(self, token: str, on_refused: Callable[[str], None] | None = None):
        self._expected = f"Bearer {token}".encode()
        self._on_refused = on_refused

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(EXEMPT_PREFIXES):
            return handler
        given = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self._expected):
            return handler
        if self._on_refused:
            self._on_refused(handler_call_details.method.rsplit("/", 1)[-1])
        return _refusal(handler)
