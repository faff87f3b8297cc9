"""Test helpers: a tiny random BERT checkpoint, and real servers on loopback that stop by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

LABELS = ["negative", "neutral", "positive"]
# Characters per text on the servers tests start in-process (``ServerThread``, ``policy``): narrowed from the
# server's 20,000 (server.core.types.RequestLimits) so that texts over it stay small.
MAX_TEXT_CHARS = 2000
WORDS = ("i love this hate that movie film good bad great awful terrible fine okay not very really "
         "the a an is was it and but so food service day night happy sad").split()


def build_tiny_model(directory: Path, *, max_positions: int = 64, seed: int = 0, labels: list[str] = LABELS,
                     problem_type: str | None = None) -> Path:
    """A 2-layer, 32-wide random BertForSequenceClassification with a fast WordPiece tokenizer; ``labels``
    and ``problem_type`` make the other heads (multi-label, or regression with one label). It is also a pair
    model: two token types (segment embeddings, random like the rest), and the tokenizer makes token_type_ids,
    so a text pair reads differently from the two segments joined (tests/server/transport/test_pairs.py)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *string.ascii_lowercase, *string.digits,
             *string.punctuation, *(f"##{c}" for c in string.ascii_lowercase + string.digits)]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(dict.fromkeys(vocab))},
                                  do_lower_case=True, model_max_length=max_positions)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions, num_labels=len(labels), initializer_range=0.4,
        type_vocab_size=2,
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}, problem_type=problem_type,
    )
    BertForSequenceClassification(config).eval().save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def server_settings(model_dir, **overrides):
    """Server settings for tests: loopback, port 0, CPU float32, small limits."""
    from server.settings import ServerSettings

    values = dict(model=str(model_dir), host="127.0.0.1", port=0, dtype="float32", max_batch_texts=16,
                  grace_seconds=2.0, metrics_port=0)
    values.update(overrides)
    return ServerSettings(**values)


POLICY_PARTS = {"batching": ("max_queue_size", "lookahead_batches", "model_nice", "max_batch_size",
                             "max_queue_seconds", "max_batch_tokens"),
                "limits": ("max_text_chars", "max_batch_texts"),
                "long_text": ("max_windows", "window_tokens", "overlap_tokens"),
                "explain": ("default_steps", "max_steps", "max_concurrent")}


def policy(settings, **constants):
    """The core policy the settings give, with some of its constants changed (``warmup=False``,
    ``max_queue_size=4``, ``max_windows=2``, ...): what tests narrow that is not a flag."""
    import dataclasses

    base = settings.core_policy()
    constants.setdefault("max_text_chars", MAX_TEXT_CHARS)
    changes = {"warmup": constants.pop("warmup")} if "warmup" in constants else {}
    for part, names in POLICY_PARTS.items():
        own = {name: constants.pop(name) for name in names if name in constants}
        if own:
            changes[part] = dataclasses.replace(getattr(base, part), **own)
    if constants:
        raise TypeError(f"not a policy constant: {sorted(constants)}")
    return dataclasses.replace(base, **changes)


class ServerThread:
    """The real gRPC server (grpc.aio) on its own event loop in a daemon thread, bound to 127.0.0.1:0;
    ``policy``: the core's limits when a test narrows a constant (``policy(settings, ...)``)."""

    def __init__(self, settings, classifier, policy=None):
        self.settings = settings
        self.classifier = classifier
        self.policy = policy
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="grpc-server")
        self.running = None

    def __enter__(self) -> "ServerThread":
        from server.app import start_server

        self.thread.start()
        narrowed = self.policy or policy(self.settings)
        self.running = asyncio.run_coroutine_threadsafe(start_server(self.settings, self.classifier, policy=narrowed),
                                                        self.loop).result(60)
        return self

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __exit__(self, *exc) -> None:
        try:
            self.call(self.running.stop(grace=1.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


class Process:
    """A console script in a subprocess, killed at the end whatever happens.

    Its stdout and stderr (merged) are read all the time by a thread, so a chatty child never blocks on a
    full pipe; ``output()`` returns what it wrote so far."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    def __enter__(self) -> "Process":
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace")
        self._reader = threading.Thread(target=self._drain, daemon=True, name=f"drain-{self.proc.pid}")
        self._reader.start()
        return self

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self._lines.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        """What the child wrote so far; all of it once the child has exited."""
        if self.proc.poll() is not None and self._reader is not None:
            self._reader.join(10)
        return "".join(self._lines)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(10)


@contextlib.contextmanager
def refused_port():
    """A loopback port bound but never listening, for the whole ``with``: connections to it are refused
    (a backend that is down), and no other process can take it meanwhile."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        yield unused.getsockname()[1]


def read_port_file(path: Path, process: "Process | None" = None, timeout: float = 600.0) -> dict:
    """The ports a server wrote to its ``--port-file`` once listening (it binds port 0: no race for a port)."""
    def written():
        if process is not None and process.proc.poll() is not None:
            raise RuntimeError(f"exited ({process.proc.returncode}) before listening:\n{process.output()[-3000:]}")
        return json.loads(path.read_text()) if path.exists() else None

    deadline = time.monotonic() + timeout
    while (ports := written()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no port file at {path} within {timeout}s")
        time.sleep(0.02)
    return ports


def python_script(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def server_process(model_dir, port_file: Path, *extra: str, module: str = "server.app", env: dict | None = None,
                   port: int = 0) -> Process:
    """``sentiment-server`` on 127.0.0.1, port 0 by default (read it back with ``read_port_file``), on the torch
    engine: these tests are about the process; choosing engines (timed at load) is tests/server/engines/test_engines.py's."""
    return Process(python_script(module, "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                                 "--port-file", str(port_file), "--engine", "torch", "--metrics-port", "0", *extra),
                   env={"CUDA_VISIBLE_DEVICES": "", **(env or {})})


class Hold:
    """The test's gate on a ``tests.support.gated_server`` process: while held, every forward pass waits."""

    def __init__(self, directory: Path):
        self.path = directory / "hold"
        self.started = directory / "hold.started"
        self.held = directory / "hold.held"

    @property
    def env(self) -> dict:
        return {"SENTIMENT_TEST_HOLD": str(self.path)}

    def close(self) -> None:
        self.path.touch()

    def open(self) -> None:
        self.path.unlink(missing_ok=True)

    def forward_passes_started(self) -> int:
        return len(self.started.read_text().splitlines()) if self.started.exists() else 0

    def forward_passes_held(self) -> int:
        """Passes that found the gate closed and waited at it (a pass may start just before ``close``)."""
        return len(self.held.read_text().splitlines()) if self.held.exists() else 0


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` (a readiness check, never a fixed sleep) until it returns truthy."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - readiness probes fail until the thing is up
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last_error!r})")


class GatedRunner:
    """A model runner whose batches wait for ``gate``: the test decides when the model is busy."""

    def __init__(self, runner):
        self._runner = runner
        self.gate = threading.Event()
        self.calls_started = 0

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def run(self, encodings):
        self.calls_started += 1
        self.gate.wait(30)
        return self._runner.run(encodings)


def gated(classifier):
    """A copy of ``classifier`` whose runner is a ``GatedRunner`` (returned too)."""
    import copy

    held = copy.copy(classifier)
    held.runner = GatedRunner(classifier.runner)
    return held, held.runner


class GatedRecorder:
    """A runner over the real tiny model whose batches wait for the gate (the test decides when the model is
    busy) and are recorded: the tokens of every text it saw, and each batch's size."""

    def __init__(self, runner):
        self._runner = runner
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Event()
        self.seen: list[int] = []
        self.batch_sizes: list[int] = []

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def run(self, encodings):
        self.busy.set()
        self.gate.wait(30)
        self.seen.extend(e.num_tokens for e in encodings)
        self.batch_sizes.append(len(encodings))
        return self._runner.run(encodings)


def gated_classifier(model_dir):
    """A fresh classifier of ``model_dir`` whose runner is a ``GatedRecorder`` (returned too)."""
    from server.core.classifier import SequenceClassifier

    classifier = SequenceClassifier(str(model_dir), device="cpu", dtype="float32")
    recorder = classifier.runner = GatedRecorder(classifier.runner)
    return classifier, recorder


def metric_samples(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}
