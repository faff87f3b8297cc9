"""The server's settings: every field is a CLI flag (``--max-batch-size``) and an environment variable
(``SENTIMENT_MAX_BATCH_SIZE``); flags win."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.builtin_model import TRAINED_MAX_TOKENS, builtin_model_dir

BUILTIN = "builtin"


class ServerSettings(BaseSettings):
    """gRPC sentiment inference server."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_", cli_kebab_case=True, cli_prog_name="sentiment-server", cli_implicit_flags=True,
        extra="ignore",
    )

    model: str = Field(BUILTIN, description="Checkpoint to serve: 'builtin' (the project's model; `sentiment-build-model`, `make serve` or `sentiment-serve-all` builds it), a local directory, or a hub id.")
    model_name: str = Field("sentiment", min_length=1, description="The model's name in the Open Inference Protocol (KServe v2) API.")
    model_version: str = Field("1", min_length=1, description="The model's version in the Open Inference Protocol API.")
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(50051, description="gRPC port (0 picks a free one).")
    port_file: Path | None = Field(None, description="Once listening, write the bound ports here as JSON ({\"grpc\": ..., \"metrics\": ...}), so that --port 0 can be read back.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the model runs: auto picks cuda when torch sees a GPU.")
    dtype: Literal["auto", "float32", "bfloat16", "float16", "int8"] = Field("auto", description="Weights and activations: auto is bf16 on CUDA; on the CPU the fastest measured at load of float32, bf16 where the CPU has it natively (AMX, AVX512-BF16), and ONNX Runtime's int8 with the float32 re-check (--recheck-margin). int8: dynamic quantization (CPU; ONNX Runtime's or torch's, by --engine), re-checked likewise.")
    engine: Literal["auto", "torch", "onnxruntime"] = Field("auto", description="Inference engine: torch, onnxruntime (CPU: the checkpoint exported to ONNX, fused by ONNX Runtime's transformer optimizer, cached in the model cache), or auto: on the CPU every candidate for --dtype is timed at load and the fastest serves each batch size; on CUDA torch. A model the export cannot handle falls back to torch with one log line.")
    recheck_margin: float | None = Field(None, ge=0, description="int8 runs again in float32 every text whose int8 answer is within this many logits of another answer (the top two labels' gap; for multi-label heads also a label's distance from the 0.5 threshold), so quantization changes almost no labels. Default: measured at load, 3x the mean error int8 makes on that gap for calibration sentences. 0 turns the re-check off (plain int8, which auto then never picks).")
    model_nice: int = Field(5, ge=0, le=19, description="Run the model thread and its engine's thread pools this much nicer (lower priority) than the rest of the process (Linux). Under CPU contention the event loop, which takes, answers and refuses calls and costs little, then runs before the forward pass: at 4x overload on two cores calls are refused at once instead of waiting in gRPC core while the model holds both cores. 0: the same priority.")
    torch_threads: int | None = Field(None, description="Intra-op threads of the engine, torch or ONNX Runtime (default: one per core).")
    max_batch_size: int = Field(32, ge=1, description="Most texts in one forward pass.")
    max_batch_tokens: int = Field(8192, ge=1, description="Most padded tokens (longest text x texts) in one forward pass.")
    max_padding_ratio: float | None = Field(None, ge=1.0, description="Optional cap on padded tokens per real token in a batch. By default none: the batcher learns each engine's cost per batch (fixed + per padded token) and forms the batch that gets the most real tokens done per second.")
    max_queue_size: int = Field(512, ge=1, description="Most texts waiting for the model; beyond it calls get RESOURCE_EXHAUSTED at once.")
    max_queue_seconds: float = Field(1.0, ge=0, description="Refuse a call at once (RESOURCE_EXHAUSTED) when it would wait longer than this: the tokens queued ahead at the rate recent batches drained under load or the time the oldest queued text has already waited, whichever is more, plus its own texts run as a batch at the learned cost; batches are then kept to half of it by their learned cost (a small bound means small batches; accepted calls' p99 runs above the bound by about its own batch and the event loop's delays); gRPC core also cancels (CANCELLED) a call it held this long (whole seconds, at least 1) before the server could take it; 0 turns the time bound off.")
    max_batch_texts: int = Field(64, ge=1, description="Most texts in one PredictBatch call.")
    max_text_chars: int = Field(20000, ge=1, description="Most characters in one text, checked before tokenizing.")
    max_input_tokens: int | None = Field(None, description="Cut texts to this many tokens (default: the model's own limit).")
    long_text: Literal["truncate", "chunk", "reject"] = Field("truncate", description="What a request that does not say does with a text over the model's token limit: cut it, read it whole in overlapping windows (chunk), or refuse it (INVALID_ARGUMENT).")
    chunk_tokens: int | None = Field(None, ge=4, description="Window size in tokens for truncation=chunk, special tokens included (default: the model's max input tokens; 128, the length it was trained on, for the built-in model; at most the model's max input tokens).")
    chunk_overlap_tokens: int | None = Field(None, ge=0, description="Tokens neighbouring windows share (default: a quarter of the window).")
    max_windows: int = Field(32, ge=1, description="Most windows one text may take with truncation=chunk; longer texts get INVALID_ARGUMENT.")
    max_concurrent_explanations: int = Field(2, ge=0, description="Most Explain calls running or waiting at once (they run on the model thread one at a time, between batches); beyond it RESOURCE_EXHAUSTED at once; 0 turns Explain off.")
    explain_steps: int = Field(50, ge=1, description="Integrated Gradients steps of an explanation when the request does not say.")
    max_explain_steps: int = Field(300, ge=1, description="Most Integrated Gradients steps a request may ask for.")
    stream_window: int = Field(64, ge=1, description="Most texts of one PredictStream call in the queue at once; the stream is read no faster.")
    max_message_bytes: int = Field(4 * 1024 * 1024, description="Largest gRPC message accepted or sent.")
    warmup: bool = Field(True, description="Run warm-up batches before reporting SERVING.")
    grace_seconds: float = Field(10.0, description="On SIGTERM: how long calls in flight may take to finish.")
    lame_duck_seconds: float = Field(1.0, ge=0, description="On SIGTERM, once the queue is empty: keep refusing new calls with UNAVAILABLE this long before closing the listener, so calls already on the wire are refused cleanly (within --grace-seconds).")
    reflection: bool = Field(True, description="Serve gRPC server reflection.")
    tls_cert: Path | None = Field(None, description="PEM certificate: serve TLS (with --tls-key).")
    tls_key: Path | None = Field(None, description="PEM private key of --tls-cert.")
    tls_client_ca: Path | None = Field(None, description="PEM CA: require client certificates signed by it (mutual TLS).")
    auth_token: str | None = Field(None, description="Require 'authorization: Bearer <token>' on every call but health checks.")
    metrics: bool = Field(True, description="Serve Prometheus metrics over HTTP at /metrics.")
    metrics_host: str | None = Field(None, description="Address of the metrics endpoint (default: --host).")
    metrics_port: int = Field(9464, description="Port of the metrics endpoint (0 picks a free one).")
    tracing: Literal["off", "console", "otlp"] = Field("off", description="OpenTelemetry tracing: off, console (print spans) or otlp (OTEL_EXPORTER_OTLP_* settings).")
    log_level: str = Field("INFO", description="Python log level.")
    access_log: bool = Field(False, description="Log one JSON line per call (logger sentiment.access: request id, method, code, duration). Off by default: at 32 callers it cost 0.3 ms of server CPU per call; metrics count every call either way.")

    @model_validator(mode="after")
    def tls_files_come_together(self) -> "ServerSettings":
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        return self

    def model_source(self) -> str:
        return str(builtin_model_dir()) if self.model == BUILTIN else self.model

    def window_tokens(self) -> int | None:
        """The chunk window asked for; None: the model's own limit. The built-in model reads best in
        windows of the length it was trained on (``server.builtin_model.TRAINED_MAX_TOKENS``)."""
        if self.chunk_tokens is None and (self.model == BUILTIN or _same_path(self.model, builtin_model_dir())):
            return TRAINED_MAX_TOKENS
        return self.chunk_tokens


def _same_path(model: str, directory: Path) -> bool:
    """``--model`` naming the built-in model's directory serves the built-in model too."""
    try:
        return Path(model).expanduser().resolve() == directory.resolve()
    except (OSError, RuntimeError):
        return False


def load_settings(argv: list[str] | None = None) -> ServerSettings:
    return ServerSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
