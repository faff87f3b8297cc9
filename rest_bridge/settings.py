"""The bridge's settings: CLI flags (``--backend``) with ``SENTIMENT_BRIDGE_*`` environment defaults."""

from __future__ import annotations

import sys

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
    port: int = Field(8080, description="HTTP port.")
    workers: int = Field(2, ge=1, description="gunicorn worker processes (each holds one gRPC channel).")
    threads: int = Field(16, ge=1, description="Threads per worker: HTTP requests served at once by each worker.")
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of each gRPC call made for an HTTP request.")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest request body; larger ones get 413.")
    max_message_bytes: int = Field(4 * 1024 * 1024, description="Largest gRPC message sent or received.")
    ready_timeout_seconds: float = Field(1.0, gt=0, description="Deadline of the backend health check behind /readyz.")
    log_level: str = Field("INFO", description="Python log level.")


def load_settings(argv: list[str] | None = None) -> BridgeSettings:
    return BridgeSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
