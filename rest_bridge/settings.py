"""The bridge's settings: CLI flags (``--backend``) with ``SENTIMENT_BRIDGE_*`` environment defaults."""

from __future__ import annotations

import sys
from typing import Literal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    threads: int = Field(96, ge=1, description="Threads per worker: HTTP requests handled at once by each worker (keep it above --max-concurrent-requests, so refusals and health checks never wait for a thread).")
    max_concurrent_requests: int = Field(64, ge=1, description="Most /predict and /explain calls in flight to the backend per worker; beyond it 429 at once instead of a queue.")
    coalesce_calls: int = Field(2, ge=0, description="Concurrent one-text /predict requests share PredictBatch calls: at most this many calls per worker are out at once, and requests that arrive meanwhile leave together in the next one (a request that finds a call free leaves at once). 0: one call per request.")
    coalesce_max_texts: int = Field(32, ge=1, description="Most texts in one shared call (at most the server's max_batch_texts).")
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of each gRPC call made for an HTTP request.")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest request body; larger ones get 413.")
    max_message_bytes: int = Field(4 * 1024 * 1024, description="Largest gRPC message sent or received.")
    ready_timeout_seconds: float = Field(1.0, gt=0, description="Deadline of the backend health check behind /readyz.")
    auth_token: str | None = Field(None, description="Require 'Authorization: Bearer <token>' on /predict, /explain, /v1/model and /v1/jobs (401 otherwise).")
    backend_token: str | None = Field(None, description="Bearer token sent to the gRPC server.")
    backend_ca_cert: Path | None = Field(None, description="PEM CA of the gRPC server's certificate: use TLS upstream.")
    backend_client_cert: Path | None = Field(None, description="PEM client certificate for mutual TLS upstream.")
    backend_client_key: Path | None = Field(None, description="PEM key of --backend-client-cert.")
    backend_server_name: str | None = Field(None, description="Expected name in the server's certificate, when it differs from the target host.")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest file accepted by POST /v1/jobs (file scoring); larger ones get 413.")
    jobs_dir: Path | None = Field(None, description="Directory of file-scoring jobs, shared by every worker (default: a new temporary directory per bridge).")
    max_jobs: int = Field(2, ge=1, description="File-scoring jobs running at once per worker; beyond it 429.")
    job_batch_texts: int = Field(32, ge=1, description="Texts per PredictBatch call of a file-scoring job (at most the server's max_batch_texts).")
    job_ttl_seconds: float = Field(3600.0, gt=0, description="How long a finished job's results stay downloadable.")
    tracing: Literal["off", "console", "otlp"] = Field("off", description="OpenTelemetry tracing: off, console (print spans) or otlp (OTEL_EXPORTER_OTLP_* settings).")
    log_level: str = Field("INFO", description="Python log level.")

    def channel_config(self):
        from clients.channel import ChannelConfig

        optional = lambda path: str(path) if path else None  # noqa: E731
        return ChannelConfig(
            target=self.backend, max_message_bytes=self.max_message_bytes, token=self.backend_token,
            ca_cert=optional(self.backend_ca_cert), client_cert=optional(self.backend_client_cert),
            client_key=optional(self.backend_client_key), server_name_override=self.backend_server_name,
        )


def load_settings(argv: list[str] | None = None) -> BridgeSettings:
    return BridgeSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
