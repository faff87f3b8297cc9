"""The server's settings: every field is a CLI flag (``--max-batch-size``) and an environment variable
(``SENTIMENT_MAX_BATCH_SIZE``); flags win. A flag is a choice a user makes; what can be derived or measured
is derived or measured (``core_policy``), and the constants live in the policy objects
(``server.core.types``, ``server.batching.policy``). A flag or variable that was removed is refused with
the name of what replaced it (``REMOVED``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from server.batching.policy import BatchPolicy
from server.builtin_model import TRAINED_MAX_TOKENS, builtin_model_dir
from server.core.types import CorePolicy, ExplainPolicy, LongTextPolicy, RequestLimits, Truncation
from sentiment.common.removed import refuse_removed

BUILTIN = "builtin"
DEFAULT_MODEL_NAME = "sentiment"  # the Open Inference Protocol name of a model given without one

# Removed settings -> what replaced them (the README's "Flags that went" table says why).
REMOVED = {
    "model_name": "name the model in --model NAME=SOURCE (default: sentiment)",
    "model_version": "give the version in --model NAME:VERSION=SOURCE (default: 1)",
    "device": "the server uses CUDA when torch sees a GPU; hide it with CUDA_VISIBLE_DEVICES= to serve on the CPU",
    "recheck_margin": "int8's re-check margin is always measured at load (3x the mean error on calibration sentences)",
    "model_nice": "a constant of the batching policy (5; server.batching.policy.BatchPolicy.model_nice)",
    "torch_threads": "the engines use one thread per core; set OMP_NUM_THREADS to change it",
    "max_padding_ratio": "the batcher learns each engine's batch cost and needs no padding cap",
    "max_queue_size": "derived: 16 batches of --max-batch-size (512 by default)",
    "max_text_chars": "a constant (20,000 characters; server.core.types.RequestLimits)",
    "max_input_tokens": "the model's own limit is used; fine-tune with a shorter max length instead",
    "chunk_tokens": "derived: the model's limit (128 for the built-in model, the length it was trained on)",
    "chunk_overlap_tokens": "derived: a quarter of the window",
    "max_windows": "a constant (32 windows; server.core.types.LongTextPolicy)",
    "explain_steps": "a constant (50 steps; requests may ask for up to 300)",
    "max_explain_steps": "a constant (300 steps; server.core.types.ExplainPolicy)",
    "stream_window": "a constant (64 texts per stream in the queue)",
    "max_message_bytes": "derived from --max-batch-texts (at least 4 MiB)",
    "warmup": "the server always warms up before it reports SERVING",
    "lame_duck_seconds": "derived: a tenth of --grace-seconds, at most 5 s",
    "reflection": "reflection is always served",
    "metrics": "set --metrics-port null to turn the metrics endpoint off",
    "metrics_host": "the metrics endpoint listens on --host",
}


class ServerSettings(BaseSettings):
    """gRPC sentiment inference server."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_", cli_kebab_case=True, cli_prog_name="sentiment-server", cli_implicit_flags=True,
        extra="ignore",
    )

    # -- the models
    model: Annotated[list[str], NoDecode] = Field([BUILTIN], description="What to serve, repeatable (the environment variable takes a comma-separated list); the first is the default model, for requests that name none. Each is SOURCE, NAME=SOURCE or NAME:VERSION=SOURCE (default name 'sentiment', version '1'): SOURCE is 'builtin' (the project's model, shipped with the repository), a checkpoint directory or a hub id; NAME=FOLDER serves a model folder of numbered version folders; a bare directory without config.json is a model repository (one folder per model, numbered version folders inside, as Triton and KServe lay them out), every model of it served.")
    model_control: Literal["none", "explicit", "poll"] = Field("none", description="Model control, Triton's modes: none (the models given at start, no repository calls), explicit (RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload load, reload and unload models while serving), or poll (explicit, and the repository is scanned every 10 seconds: a new version folder is loaded and takes over, a removed one unloaded).")
    model_memory_mb: int | None = Field(None, ge=1, description="Memory budget of the loaded model versions together, by their estimates (weights, engines and batch activations, from the checkpoint's config and safetensors header before loading): a load past it is refused (FAILED_PRECONDITION) and the versions being served stay. None: no budget.")
    dtype: Literal["auto", "float32", "bfloat16", "float16", "int8"] = Field("auto", description="Weights and activations: auto is bf16 on CUDA; on the CPU the fastest measured at load of float32, bf16 where the CPU has it natively (AMX, AVX512-BF16), and ONNX Runtime's int8 with a float32 re-check of close calls. int8: dynamic quantization (CPU; ONNX Runtime's or torch's, by --engine), re-checked likewise.")
    engine: Literal["auto", "torch", "onnxruntime"] = Field("auto", description="Inference engine: torch, onnxruntime (CPU: the checkpoint exported to ONNX, fused, cached in the model cache), or auto: on the CPU every candidate for --dtype is timed at load and the fastest serves each batch size; on CUDA torch.")
    # -- the network
    host: str = Field("0.0.0.0", description="Address to listen on (gRPC and metrics).")
    port: int = Field(50051, description="gRPC port (0 picks a free one).")
    port_file: Path | None = Field(None, description="Once listening, write the bound ports here as JSON ({\"grpc\": ..., \"metrics\": ...}), so that --port 0 can be read back.")
    metrics_port: int | None = Field(9464, description="Port of the Prometheus /metrics endpoint (0 picks a free one; null turns it off).")
    # -- batching and admission
    max_batch_size: int = Field(32, ge=1, description="Most texts in one forward pass (the queue holds 16 batches of it).")
    max_batch_tokens: int = Field(8192, ge=1, description="Most padded tokens (longest text x texts) in one forward pass.")
    max_queue_seconds: float = Field(1.0, ge=0, description="Refuse a call at once (RESOURCE_EXHAUSTED) when it would wait longer than this for the model (the work queued ahead at the measured drain rate, or the time the oldest queued text has waited, plus its own batch at the learned cost); batches are kept to half of it; gRPC core also cancels a call it held this long (whole seconds, at least 1) before the server could take it. 0 turns the time bound off.")
    max_batch_texts: int = Field(64, ge=1, description="Most texts in one PredictBatch call (one OIP request).")
    # -- what requests may do
    long_text: Truncation = Field(Truncation.TRUNCATE, description="What a request that does not say does with a text over the model's token limit, whatever protocol it came by: cut it (truncate), read it whole in overlapping windows (chunk), or refuse it (reject, INVALID_ARGUMENT).")
    max_concurrent_explanations: int = Field(2, ge=0, description="Most Explain calls running or waiting at once (they run on the model thread one at a time, between batches); beyond it RESOURCE_EXHAUSTED at once; 0 turns Explain off.")
    # -- lifecycle, security, observability
    grace_seconds: float = Field(10.0, ge=0, description="On SIGTERM: how long calls in flight may take to finish.")
    tls_cert: Path | None = Field(None, description="PEM certificate: serve TLS (with --tls-key).")
    tls_key: Path | None = Field(None, description="PEM private key of --tls-cert.")
    tls_client_ca: Path | None = Field(None, description="PEM CA: require client certificates signed by it (mutual TLS).")
    auth_token: str | None = Field(None, description="Require 'authorization: Bearer <token>' on every call but health checks.")
    tracing: Literal["off", "console", "otlp"] = Field("off", description="OpenTelemetry tracing: off, console (print spans) or otlp (OTEL_EXPORTER_OTLP_* settings).")
    log_level: str = Field("INFO", description="Python log level.")
    access_log: bool = Field(False, description="Log one JSON line per call (logger sentiment.access: request id, method, code, duration). Off by default: at 32 callers it cost 0.3 ms of server CPU per call; metrics count every call either way.")

    @model_validator(mode="after")
    def tls_files_come_together(self) -> "ServerSettings":
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if not self.model:
            raise ValueError("--model: give at least one model")
        for entry in self.model:
            model_spec(entry)  # a malformed NAME:VERSION=SOURCE fails here, at start
        return self

    @field_validator("model", mode="before")
    @classmethod
    def split_models(cls, value):
        """One value or several: a list (repeated flags), or a comma-separated string (the environment)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def model_spec(self) -> tuple[str, str, str]:
        """(name, version, source) of the first, default ``--model``."""
        return model_spec(self.model[0])

    def model_entries(self) -> list[tuple[str, str, str, bool]]:
        """(name, version, source, whether it was named) of every --model, in order."""
        return [(*model_spec(entry), "=" in entry) for entry in self.model]

    def is_builtin(self, source: str | None = None) -> bool:
        source = self.model_spec()[2] if source is None else source
        return source == BUILTIN or _same_path(source, builtin_model_dir())

    def model_source(self, source: str | None = None) -> str:
        source = self.model_spec()[2] if source is None else source
        return str(builtin_model_dir()) if source == BUILTIN else source

    def served_name(self, source: str | None = None) -> str:
        """What GetModelInfo calls a model: ``builtin`` for the built-in model, else its source."""
        source = self.model_spec()[2] if source is None else source
        return BUILTIN if self.is_builtin(source) else source

    def core_policy(self, source: str | None = None) -> CorePolicy:
        """Every limit a model's core works under, from these settings and the constants (``source``: the
        model's, by default the first --model's)."""
        return CorePolicy(
            batching=BatchPolicy(max_batch_size=self.max_batch_size, max_batch_tokens=self.max_batch_tokens,
                                 max_queue_seconds=self.max_queue_seconds),
            limits=RequestLimits(max_batch_texts=self.max_batch_texts),
            # the built-in model reads best in windows of the length it was trained on
            long_text=LongTextPolicy(default=self.long_text,
                                     window_tokens=TRAINED_MAX_TOKENS if self.is_builtin(source) else None),
            explain=ExplainPolicy(max_concurrent=self.max_concurrent_explanations),
        )

    @property
    def max_message_bytes(self) -> int:
        """Largest gRPC message: room for a full PredictBatch of the longest texts (4 bytes a character), and
        never under gRPC's usual 4 MiB."""
        return max(4 * 1024 * 1024, self.max_batch_texts * RequestLimits().max_text_chars * 4 + 64 * 1024)

    @property
    def lame_duck_seconds(self) -> float:
        """On SIGTERM, once the queue is empty: how long new calls are still refused with UNAVAILABLE before
        the listener closes, so calls already on the wire are refused cleanly."""
        return min(5.0, self.grace_seconds / 10)


def model_spec(entry: str) -> tuple[str, str, str]:
    """(name, version, source) of one ``--model``: ``SOURCE``, ``NAME=SOURCE`` or ``NAME:VERSION=SOURCE``."""
    named, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
    name, _, version = named.partition(":")
    if "=" in entry and not (name and source and (version or ":" not in named)):
        raise ValueError(f"--model {entry!r}: give SOURCE, NAME=SOURCE or NAME:VERSION=SOURCE")
    return name or DEFAULT_MODEL_NAME, version or "1", source


def _same_path(model: str, directory: Path) -> bool:
    """``--model`` naming the built-in model's directory serves the built-in model too."""
    try:
        return Path(model).expanduser().resolve() == directory.resolve()
    except (OSError, RuntimeError):
        return False


def load_settings(argv: list[str] | None = None) -> ServerSettings:
    argv = sys.argv[1:] if argv is None else argv
    refuse_removed(REMOVED, argv, os.environ, env_prefix="SENTIMENT_", other_prefixes=("SENTIMENT_BRIDGE_",))
    return ServerSettings(_cli_parse_args=argv)
