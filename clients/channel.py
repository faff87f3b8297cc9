"""How every client builds its one channel: options, service config, credentials, target."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import grpc

from clients import retry
from sentiment.common.tracing import outgoing_metadata

SERVICE = "sentiment.v1.SentimentService"
OIP_SERVICE = "inference.GRPCInferenceService"
# round_robin spreads calls over every address a target resolves to (a headless Service, or a list of
# addresses). Retries are the client's own (clients/retry.py), not the channel's.
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def normalise_target(target: str | list[str]) -> str:
    """``host:port``, a gRPC URI (``dns:///svc:50051``), or several addresses (list or comma-separated)."""
    addresses = target if isinstance(target, list) else [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) == 1:
        return addresses[0]
    if any("://" in a or a.startswith(("ipv4:", "ipv6:", "unix:")) for a in addresses):
        raise ValueError("several addresses must be plain host:port pairs")
    if all(a.replace(".", "").replace(":", "").isdigit() for a in addresses):
        return "ipv4:" + ",".join(addresses)
    return "ipv4:" + ",".join(a.replace("localhost", "127.0.0.1") for a in addresses)


@dataclass(frozen=True)
class ChannelConfig:
    target: str | list[str] = "localhost:50051"
    max_message_bytes: int = 4 * 1024 * 1024
    ca_cert: str | None = None  # TLS when set (or when client_cert is set)
    client_cert: str | None = None  # mutual TLS: this certificate and key
    client_key: str | None = None
    token: str | None = None  # sent as "authorization: Bearer <token>"
    server_name_override: str | None = None

    def options(self) -> list[tuple[str, object]]:
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.service_config", SERVICE_CONFIG),
            # reconnect fast after a server restart, so that retries find it
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if self.server_name_override:
            options.append(("grpc.ssl_target_name_override", self.server_name_override))
        return options

    def __post_init__(self):
        # gRPC's core aborts the whole process on a certificate without its key: refuse it here, clearly
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("a client certificate and its key go together (client_cert with client_key)")

    def credentials(self) -> grpc.ChannelCredentials | None:
        if not (self.ca_cert or self.client_cert):
            return None
        read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_cert), private_key=read(self.client_key),
            certificate_chain=read(self.client_cert),
        )

    def metadata(self, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
        metadata = []
        if self.token:
            metadata.append(("authorization", f"Bearer {self.token}"))
        if request_id:
            metadata.append(("x-request-id", request_id))
        metadata.extend(outgoing_metadata())  # W3C trace context, when a span is active
        return tuple(metadata)

    def open(self, aio: bool = False):
        module = grpc.aio if aio else grpc
        target, credentials = normalise_target(self.target), self.credentials()
        if credentials:
            return module.secure_channel(target, credentials, options=self.options())
        return module.insecure_channel(target, options=self.options())


class ClientBase:
    """What both clients share: the settings of their one channel, the default deadline and the retry policy."""

    def __init__(self, target: str | list[str] = "localhost:50051", *, timeout: float = 10.0,
                 wait_for_ready: bool = False, retries: bool = True, config: ChannelConfig | None = None,
                 **channel_options):
        """``wait_for_ready``: calls wait (within their deadline) for a server to come back instead of
        failing at once with UNAVAILABLE; use it for batch jobs that must ride through restarts.
        ``retries=False``: no call is tried again (``clients.retry``). ``channel_options`` are
        ``ChannelConfig`` fields (TLS files, token, message size)."""
        self.config = config or ChannelConfig(target=target, **channel_options)
        self.timeout = timeout
        self.wait_for_ready = wait_for_ready
        self.retry = (retry.UNTIL_DEADLINE if wait_for_ready else retry.DEFAULT) if retries else retry.NO_RETRY

    def with_retry(self, policy: "retry.RetryPolicy"):
        """This client (the same channel) with another retry policy: ``client.with_retry(WAIT_OUT_OVERLOAD)``."""
        other = copy.copy(self)
        other.retry = policy
        return other
