"""The inference core: validation, batching, post-processing and model facts, in plain Python.

Transports (the gRPC servicer, and through it the REST bridge) hand it texts and options and get
``Prediction`` objects or a ``ServiceError`` back; they never touch the model or the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from server import __version__
from server.batch_cost import CostEstimate
from server.batcher import DynamicBatcher
from server.engines import describe
from server.errors import InvalidInput, NotReady
from server.metrics import ServerMetrics
from server.model import Encoding, SequenceClassifier
from server.settings import ServerSettings

log = logging.getLogger(__name__)

WARMUP_LENGTHS = (8, 32, 128)


@dataclass(frozen=True)
class PredictOptions:
    truncate: bool = True
    return_logits: bool = False


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    scores: dict[str, float]
    logits: list[float] | None
    num_tokens: int
    truncated: bool


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    model_source: str
    weights_sha256: str
    labels: list[str]
    max_input_tokens: int
    device: str
    dtype: str
    max_batch_size: int
    max_batch_tokens: int
    max_queue_size: int
    max_queue_seconds: float
    max_batch_texts: int
    max_text_chars: int
    engine: str = ""
    batch_costs: dict[str, CostEstimate] = field(default_factory=dict)
    server_version: str = __version__


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class InferenceCore:
    def __init__(self, classifier: SequenceClassifier, settings: ServerSettings, metrics: ServerMetrics | None = None,
                 executor: Executor | None = None):
        self.classifier = classifier
        self.settings = settings
        self.metrics = metrics
        self.executor = executor
        self.batcher: DynamicBatcher | None = None
        self.ready = False
        self.stopping = False

    async def start(self) -> None:
        """Start the batch worker and warm the model up; ``ready`` turns true when it is done."""
        self.batcher = DynamicBatcher(
            self.classifier.forward,
            max_batch_size=self.settings.max_batch_size,
            max_batch_tokens=self.settings.max_batch_tokens,
            max_queue_size=self.settings.max_queue_size,
            max_padding_ratio=self.settings.max_padding_ratio,
            max_queue_seconds=self.settings.max_queue_seconds,
            on_batch=self.metrics.observe_batch if self.metrics else None,
            executor=self.executor,
            engine_key=self.engine_key,
        )
        if self.metrics:
            batcher = self.batcher
            self.metrics.queue_depth.set_function(lambda: batcher.queue_depth)
            self.metrics.watch_batch_costs(batcher.cost_estimates)
            info = self.model_info()
            self.metrics.model_info.info({"model": info.model_name, "source": info.model_source, "dtype": info.dtype,
                                          "device": info.device, "version": info.server_version,
                                          "weights_sha256": info.weights_sha256[:16]})
        self.batcher.start()
        if self.settings.warmup:
            started = time.perf_counter()
            for size, width, seconds in await self.batcher.run_in_worker(self._warm_up):
                self.batcher.observe_cost(size, width, seconds)
            log.info("warm-up done in %.1fs; batch cost: %s", time.perf_counter() - started, "; ".join(
                f"{key}: {est.fixed_seconds * 1000:.2f} ms + {est.seconds_per_token * 1e6:.2f} us/token"
                f" + {est.seconds_per_token_width * 1e9:.2f} ns/token/width"
                for key, est in self.batcher.cost_estimates().items()))
        self.ready = True

    def engine_key(self, batch_size: int) -> str:
        """The engine that runs a batch of this size, by name: the batcher learns a cost for each."""
        return describe(self.classifier.engine_for(batch_size))

    def _warm_up(self) -> list[tuple[int, int, float]]:
        """Two batches of each shape, so the first callers never pay for lazy initialisation; the second
        one's time seeds the batcher's cost estimate. Returns (texts, width, seconds)."""
        tokens = self.classifier.encode(["warm up"])[0].input_ids
        timings = []
        for length in (n for n in WARMUP_LENGTHS if n <= self.classifier.max_tokens):
            encoding = Encoding(tokens[:1] + tokens[1:2] * (length - 2) + tokens[-1:], truncated=False)
            for size in sorted({1, min(8, self.settings.max_batch_size), self.settings.max_batch_size}):
                if size * length <= self.settings.max_batch_tokens:
                    self.classifier.forward([encoding] * size)
                    started = time.perf_counter()
                    self.classifier.forward([encoding] * size)
                    timings.append((size, length, time.perf_counter() - started))
        return timings

    async def stop(self) -> None:
        """Refuse new work and finish what is queued."""
        self.ready = False
        self.stopping = True
        if self.batcher:
            await self.batcher.drain()

    def validate(self, texts: list[str]) -> None:
        if not texts:
            raise InvalidInput("no texts were given", field="texts")
        if len(texts) > self.settings.max_batch_texts:
            raise InvalidInput(
                f"{len(texts)} texts in one call; the limit is {self.settings.max_batch_texts}", field="texts"
            )
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInput(f"text {index} is not a string", field=f"texts[{index}]")
            if not text.strip():
                raise InvalidInput(f"text {index} is empty", field=f"texts[{index}]")
            if len(text) > self.settings.max_text_chars:
                raise InvalidInput(
                    f"text {index} has {len(text)} characters; the limit is {self.settings.max_text_chars}",
                    field=f"texts[{index}]",
                )

    async def predict(self, texts: list[str], options: PredictOptions = PredictOptions(),
                      timeout: float | None = None) -> list[Prediction]:
        """Predictions for ``texts`` in input order; all texts of one call are validated before any runs."""
        if not self.ready or self.batcher is None:
            raise NotReady("the server is shutting down" if self.stopping else "the model is not ready yet")
        self.validate(texts)
        encodings = self.classifier.encode(texts, truncate=options.truncate)
        rows = await self.batcher.submit(encodings, timeout=timeout)
        logits = np.stack(rows)
        probabilities = softmax(logits)
        labels = self.classifier.labels
        predictions = []
        for encoding, row, probs in zip(encodings, logits, probabilities):
            best = int(probs.argmax())
            predictions.append(Prediction(
                label=labels[best],
                class_id=best,
                scores={label: float(p) for label, p in zip(labels, probs)},
                logits=[float(v) for v in row] if options.return_logits else None,
                num_tokens=encoding.num_tokens,
                truncated=encoding.truncated,
            ))
        return predictions

    def model_info(self) -> ModelInfo:
        c, s = self.classifier, self.settings
        return ModelInfo(
            model_name=c.name, model_source=c.source, weights_sha256=c.weights_sha256, labels=list(c.labels),
            max_input_tokens=c.max_tokens, device=c.device_name, dtype=c.dtype_name,
            max_batch_size=s.max_batch_size, max_batch_tokens=s.max_batch_tokens, max_queue_size=s.max_queue_size,
            max_queue_seconds=s.max_queue_seconds or 0.0,
            max_batch_texts=s.max_batch_texts, max_text_chars=s.max_text_chars,
            engine=c.engine_name, batch_costs=self.batcher.cost_estimates() if self.batcher else {},
        )
