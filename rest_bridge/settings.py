"""The bridge's settings: CLI flags (``--backend``) with ``SENTIMENT_BRIDGE_*`` environment defaults. A flag is
a choice a user makes; the rest is derived here or a constant of ``BridgePolicy``. A removed flag or
variable is refused with the name of what replaced it (``REMOVED``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sentiment.common.removed import refuse_removed

REMOVED = {
    "threads": "derived: --max-concurrent-requests plus 32 threads per worker, so refusals and health checks never wait",
    "coalesce_max_texts": "derived: 32 texts a shared call, at most the server's max_batch_texts (GetModelInfo)",
    "max_message_bytes": "derived: four times --max-body-bytes, at least 4 MiB",
    "ready_timeout_seconds": "a constant (1 s; rest_bridge.settings.BridgePolicy)",
    "backend_server_name": "give the target by the name in the server's certificate (--backend name:port)",
    "max_upload_bytes": "derived: ten times --max-body-bytes (10 MiB by default)",
    "max_jobs": "a constant (2 jobs per worker; rest_bridge.settings.BridgePolicy)",
    "job_batch_texts": "derived: 32 texts a call, at most the server's max_batch_texts (GetModelInfo)",
    "job_ttl_seconds": "a constant (1 hour; rest_bridge.settings.BridgePolicy)",
}


@dataclass(frozen=True)
class BridgePolicy:
    """The bridge's constants and what is derived from its flags, in one place."""

    threads: int = 96
    """Threads per gunicorn worker: --max-concurrent-requests and 32 more."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest gRPC message sent or received: four times --max-body-bytes, at least 4 MiB."""
    max_upload_bytes: int = 10 * 1024 * 1024
    """Largest file POST /v1/jobs accepts: ten times --max-body-bytes."""
    shared_call_texts: int = 32
    """Most texts in one shared /predict call, and in one call of a file-scoring job (never more than the
    server's max_batch_texts)."""
    ready_timeout_seconds: float = 1.0
    """Deadline of the backend health check behind /readyz."""
    max_jobs: int = 2
    """File-scoring jobs running at once per worker; beyond it 429."""
    job_ttl_seconds: float = 3600.0
    """How long a finished job's results stay downloadable."""
    load_timeout_seconds: float = 600.0
    """Deadline of a model load through POST /v2/repository/models/{name}/load (a load reads the weights,
    builds and times the engines and warms them up)."""


class BridgeSettings(BaseSettings):
    """Flask REST bridge to the sentiment gRPC service, run under gunicorn."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_BRIDGE_", cli_kebab_case=True, cli_prog_name="sentiment-bridge", cli_implicit_flags=True,
        extra="ignore",
    )

    backend: str = Field("localhost:50051", description="gRPC target: host:port, dns:///name:port, or a comma-separated list of host:port.")
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8080, description="HTTP port (0 picks a free one).")
    port_file: Path | None = Field(None, description="Once listening, write the bound port here as JSON ({\"http\": ...}), so that --port 0 can be read back.")
    workers: int = Field(2, ge=1, description="gunicorn worker processes (each holds one gRPC channel).")
    max_concurrent_requests: int = Field(64, ge=1, description="Most /predict, /explain and /v2/.../infer calls in flight to the backend per worker; beyond it 429 at once instead of a queue.")
    coalesce_calls: int = Field(2, ge=0, description="Concurrent one-text /predict requests share PredictBatch calls: at most this many calls per worker are out at once, and requests that arrive meanwhile leave together in the next one (a request that finds a call free leaves at once). 0: one call per request.")
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of each gRPC call made for an HTTP request.")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest request body; larger ones get 413 (uploads to /v1/jobs may be ten times larger).")
    auth_token: str | None = Field(None, description="Require 'Authorization: Bearer <token>' on /predict, /explain, /v1/model, /v1/jobs and /v2/models/... (401 otherwise).")
    backend_token: str | None = Field(None, description="Bearer token sent to the gRPC server.")
    backend_ca_cert: Path | None = Field(None, description="PEM CA of the gRPC server's certificate: use TLS upstream.")
    backend_client_cert: Path | None = Field(None, description="PEM client certificate for mutual TLS upstream.")
    backend_client_key: Path | None = Field(None, description="PEM key of --backend-client-cert.")
    jobs_dir: Path | None = Field(None, description="Directory of file-scoring jobs, shared by every worker (default: a new temporary directory per bridge).")
    tracing: Literal["off", "console", "otlp"] = Field("off", description="OpenTelemetry tracing: off, console (print spans) or otlp (OTEL_EXPORTER_OTLP_* settings).")
    log_level: str = Field("INFO", description="Python log level.")

    @model_validator(mode="after")
    def client_certificate_comes_with_its_key(self) -> "BridgeSettings":
        if bool(self.backend_client_cert) != bool(self.backend_client_key):
            raise ValueError("--backend-client-cert and --backend-client-key go together")
        return self

    def policy(self) -> BridgePolicy:
        return BridgePolicy(threads=self.max_concurrent_requests + 32,
                            max_message_bytes=max(4 * 1024 * 1024, 4 * self.max_body_bytes),
                            max_upload_bytes=10 * self.max_body_bytes)

    def channel_config(self, policy: BridgePolicy | None = None):
        from clients.channel import ChannelConfig

        optional = lambda path: str(path) if path else None  # noqa: E731
        return ChannelConfig(
            target=self.backend, max_message_bytes=(policy or self.policy()).max_message_bytes, token=self.backend_token,
            ca_cert=optional(self.backend_ca_cert), client_cert=optional(self.backend_client_cert),
            client_key=optional(self.backend_client_key),
        )


def load_settings(argv: list[str] | None = None) -> BridgeSettings:
    argv = sys.argv[1:] if argv is None else argv
    refuse_removed(REMOVED, argv, os.environ, env_prefix="SENTIMENT_BRIDGE_")
    return BridgeSettings(_cli_parse_args=argv)
