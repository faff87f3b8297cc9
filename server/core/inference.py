"""The inference core: validation, batching, post-processing and model facts, in plain Python.

Transports (the gRPC servicer, and through it the REST bridge) hand it texts and options and get
``Prediction`` objects or a ``ServiceError`` back; they never touch the model or the queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from server import __version__
from server.core import chunking
from server.engines import heads
from server.batching.cost import CostEstimate
from server.batching.queue import DynamicBatcher
from server.core.chunking import Window, WindowPlan
from server.engines import describe
from server.engines.select import rechecked_engine
from server.errors import DeadlineExceeded, InvalidInput, NotReady, Overloaded, ServiceError
from server.metrics import ServerMetrics
from server.engines.loading import Encoding, SequenceClassifier
from server.settings import ServerSettings

log = logging.getLogger(__name__)

WARMUP_LENGTHS = (8, 32, 128)


TRUNCATIONS = ("truncate", "reject", "chunk")


@dataclass(frozen=True)
class PredictOptions:
    truncation: str | None = None  # "truncate", "reject" or "chunk"; None: the server's --long-text
    return_logits: bool = False
    return_windows: bool = False  # with "chunk": every window's own prediction too
    threshold: float = heads.DEFAULT_THRESHOLD  # multi-label heads: predict every label at or above it


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    scores: dict[str, float]  # softmax (single-label) or sigmoid (multi-label) per label; empty for regression
    logits: list[float] | None
    num_tokens: int
    truncated: bool
    predicted_labels: list[str] | None = None  # multi-label heads only
    score: float | None = None  # regression heads only
    windows: int = 0  # windows read with truncation "chunk"
    window_predictions: list["WindowPrediction"] | None = None


@dataclass(frozen=True)
class WindowPrediction:
    start: int  # character offsets of the window in the original text
    end: int
    prediction: Prediction


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    target: str
    words: list  # server.engines.explainer.WordAttribution
    convergence_delta: float
    steps: int
    forward_passes: int


@dataclass(frozen=True)
class RecheckInfo:
    margin: float
    engine: str
    texts: int
    rechecked: int


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
    problem_type: str = heads.SINGLE_LABEL
    long_text: str = "truncate"
    window_tokens: int = 0
    overlap_tokens: int = 0
    max_windows: int = 0
    max_concurrent_explanations: int = 0
    explain_steps: int = 0
    max_explain_steps: int = 0
    recheck: RecheckInfo | None = None
    server_version: str = __version__


softmax = heads.softmax  # kept for callers of the earlier name


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
        self.problem_type = getattr(classifier, "problem_type", heads.SINGLE_LABEL)
        self.window_plan = WindowPlan.for_model(
            classifier.max_tokens, classifier.tokenizer.num_special_tokens_to_add(pair=False),
            settings.window_tokens(), settings.chunk_overlap_tokens, settings.max_windows)
        self._explainer = None  # server.engines.explainer.Explainer, made at start unless Explain is off
        self._explanations = 0  # Explain calls running or waiting now
        self._explain_turn = asyncio.Lock()  # one explanation on the model thread at a time

    async def start(self) -> None:
        """Start the batch worker and warm the model up; ``ready`` turns true when it is done."""
        self.batcher = DynamicBatcher(
            self._forward,
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
            self.metrics.watch_recheck(self.recheck_info)
            info = self.model_info()
            self.metrics.model_info.info({"model": info.model_name, "source": info.model_source, "dtype": info.dtype,
                                          "device": info.device, "version": info.server_version,
                                          "weights_sha256": info.weights_sha256[:16]})
        self.batcher.start()
        if self.settings.max_concurrent_explanations:
            # before SERVING: Captum's first import can take minutes (matplotlib builds its font cache), and a
            # server predicting in bf16 or int8 loads a float32 copy to explain with
            await self.batcher.run_in_worker(self._load_explainer)
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
        """Predictions for ``texts`` in input order; all texts of one call are validated before any runs.

        With truncation "chunk" every window of every text is queued as a text of its own (one
        all-or-nothing admission for the call), and each text's windows are combined afterwards."""
        if not self.ready or self.batcher is None:
            raise NotReady("the server is shutting down" if self.stopping else "the model is not ready yet")
        self.validate(texts)
        mode = options.truncation or self.settings.long_text
        if mode not in TRUNCATIONS:
            raise InvalidInput(f"truncation must be one of {', '.join(TRUNCATIONS)}", field="options.truncation")
        if not 0.0 <= options.threshold <= 1.0:
            raise InvalidInput("threshold must be between 0 and 1", field="options.threshold")
        if mode != "chunk":
            encodings = self.classifier.encode(texts, truncate=mode == "truncate")
            self._check_queue_room(len(encodings))
            rows = await self.batcher.submit(encodings, timeout=timeout)
            return [self._prediction(logits, outputs, options, e.num_tokens, e.truncated)
                    for (logits, outputs), e in zip(rows, encodings)]
        groups = chunking.split(self.classifier.tokenizer, texts, self.window_plan)
        flat = [window.encoding for group in groups for window in group]
        self._check_queue_room(len(flat))
        rows = await self.batcher.submit(flat, timeout=timeout)
        predictions, first = [], 0
        for group in groups:
            predictions.append(self._combined(group, rows[first : first + len(group)], options))
            first += len(group)
        return predictions

    def _check_queue_room(self, windows: int) -> None:
        if windows > self.settings.max_queue_size:
            raise InvalidInput(f"the call needs {windows} windows; the server queues at most "
                               f"{self.settings.max_queue_size}: send fewer or shorter texts", field="texts")

    def _forward(self, encodings: list[Encoding]) -> list[tuple[list[float], list[float]]]:
        """The batcher's work, on the model thread: the batch's logits and what the head makes of them
        (``heads.outputs``), row by row as plain floats. Done here once per batch, the answer to each call
        needs no numpy on the event loop, where a dozen numpy calls on a row of three cost about 0.1 ms of
        CPU a call under load (measured with a model that only sleeps)."""
        logits = self.classifier.forward(encodings)
        return list(zip(logits.tolist(), heads.outputs(self.problem_type, logits).tolist()))

    def _prediction(self, logits: Sequence[float], outputs: Sequence[float], options: PredictOptions,
                    num_tokens: int, truncated: bool, **extra) -> Prediction:
        labels = self.classifier.labels
        decision = heads.decide(self.problem_type, outputs, options.threshold)
        return Prediction(
            label=labels[decision.class_id],
            class_id=decision.class_id,
            scores={} if decision.probabilities is None else dict(zip(labels, decision.probabilities)),
            logits=list(logits) if options.return_logits else None,
            num_tokens=num_tokens,
            truncated=truncated,
            predicted_labels=None if decision.predicted is None else [labels[i] for i in decision.predicted],
            score=decision.score,
            **extra,
        )

    def _combined(self, windows: list[Window], rows: list[tuple[list[float], list[float]]],
                  options: PredictOptions) -> Prediction:
        """One long text's prediction from its windows' rows (logits, outputs), weighted by their tokens."""
        per_window = None
        if options.return_windows:
            per_window = [WindowPrediction(w.start, w.end, self._prediction(logits, outputs, options, w.encoding.num_tokens, False))
                          for w, (logits, outputs) in zip(windows, rows)]
        logits = chunking.token_weighted_mean(np.array([r[0] for r in rows]), windows)
        outputs = chunking.token_weighted_mean(np.array([r[1] for r in rows]), windows)
        return self._prediction(logits.tolist(), outputs.tolist(), options, sum(w.encoding.num_tokens for w in windows),
                                False, windows=len(windows), window_predictions=per_window)

    async def explain(self, text: str, *, label: str | None = None, truncation: str | None = None,
                      steps: int | None = None, timeout: float | None = None) -> Explanation:
        """Attribute one text's prediction (or ``label``) to its words (``server.engines.explainer``).

        At most ``max_concurrent_explanations`` run or wait at once (RESOURCE_EXHAUSTED at once past
        it); they take the model thread one at a time, so a batch waits behind one explanation at most."""
        if not self.ready or self.batcher is None:
            raise NotReady("the server is shutting down" if self.stopping else "the model is not ready yet")
        limit = self.settings.max_concurrent_explanations
        if limit == 0:
            raise InvalidInput("explanations are turned off on this server (--max-concurrent-explanations 0)")
        try:
            self.validate([text])
        except InvalidInput as error:
            raise InvalidInput(error.message.replace("text 0", "the text"), field="text") from None
        mode = truncation or ("truncate" if self.settings.long_text == "chunk" else self.settings.long_text)
        if mode not in ("truncate", "reject"):
            raise InvalidInput("explanations read one window: send truncation truncate or reject", field="truncation")
        steps = steps or self.settings.explain_steps
        if not 1 <= steps <= self.settings.max_explain_steps:
            raise InvalidInput(f"steps must be between 1 and {self.settings.max_explain_steps}", field="steps")
        labels = self.classifier.labels
        if label and label not in labels:
            raise InvalidInput(f"unknown label {label!r}; the model's labels are {', '.join(labels)}", field="label")
        if self._explanations >= limit:
            raise Overloaded(f"{self._explanations} explanations are running or waiting, the limit; retry later")
        self._explanations += 1
        stop_at = time.monotonic() + timeout if timeout is not None else None
        cancelled = threading.Event()
        try:
            async with self._explain_turn:
                if stop_at is not None and time.monotonic() >= stop_at:
                    raise DeadlineExceeded("the deadline passed while the explanation waited for its turn")
                result = await self.batcher.run_in_worker(
                    self._explain_on_model_thread, text, labels.index(label) if label else None, steps,
                    mode == "truncate", stop_at, cancelled)
        except asyncio.CancelledError:
            cancelled.set()  # the caller went away: the model thread stops at its next forward pass
            raise
        finally:
            self._explanations -= 1
        outputs = heads.outputs(self.problem_type, result.logits[None, :])[0]
        prediction = self._prediction(result.logits.tolist(), outputs.tolist(), PredictOptions(), result.num_tokens,
                                      result.truncated)
        return Explanation(prediction=prediction, target=labels[result.target], words=result.words,
                           convergence_delta=result.convergence_delta, steps=result.steps,
                           forward_passes=result.forward_passes)

    def _load_explainer(self) -> None:
        from server.engines.explainer import Explainer, float32_model

        self._explainer = Explainer(float32_model(self.classifier), self.classifier.tokenizer,
                                    max_tokens=self.classifier.max_tokens,
                                    max_batch_tokens=self.settings.max_batch_tokens)

    def _explain_on_model_thread(self, text, target, steps, truncate, stop_at, cancelled):
        if self._explainer is None:
            self._load_explainer()
        # no label named: the explainer takes the largest logit, which is the predicted label of every head
        try:
            return self._explainer.explain(text, target=target, steps=steps, truncate=truncate, stop_at=stop_at,
                                           cancelled=cancelled)
        except ServiceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed explanation fails its call, never the server
            log.exception("explanation failed")
            raise ServiceError(f"the explanation failed: {exc}") from exc

    def model_info(self) -> ModelInfo:
        c, s = self.classifier, self.settings
        return ModelInfo(
            model_name=c.name, model_source=c.source, weights_sha256=c.weights_sha256, labels=list(c.labels),
            max_input_tokens=c.max_tokens, device=c.device_name, dtype=c.dtype_name,
            max_batch_size=s.max_batch_size, max_batch_tokens=s.max_batch_tokens, max_queue_size=s.max_queue_size,
            max_queue_seconds=s.max_queue_seconds or 0.0,
            max_batch_texts=s.max_batch_texts, max_text_chars=s.max_text_chars,
            engine=c.engine_name, batch_costs=self.batcher.cost_estimates() if self.batcher else {},
            problem_type=self.problem_type, long_text=s.long_text, window_tokens=self.window_plan.window_tokens,
            overlap_tokens=self.window_plan.overlap_tokens, max_windows=self.window_plan.max_windows,
            max_concurrent_explanations=s.max_concurrent_explanations, explain_steps=s.explain_steps,
            max_explain_steps=s.max_explain_steps, recheck=self.recheck_info(),
        )

    def recheck_info(self) -> RecheckInfo | None:
        rechecked = rechecked_engine(self.classifier.engine)
        if rechecked is None:
            return None
        texts, count = rechecked.counts()
        return RecheckInfo(margin=rechecked.margin, engine=describe(rechecked.exact), texts=texts, rechecked=count)
