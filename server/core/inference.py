"""The inference core: validation, tokenizing, batching, the head's decisions and the model's facts, in
plain Python.

Transports (both gRPC servicers, and through them the REST bridge) hand it texts and options and get
``Prediction`` objects or a ``ServiceError`` back; they never touch the model or the queue. A text's walk
is one way: core (validate, tokenize) → batcher (queue, admission) → engine runner (pad, run, the head's
outputs) → back through the futures, with nothing calling back into the core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from server.batching.queue import DynamicBatcher
from server.core import chunking
from server.core.chunking import Window, WindowPlan
from server.core.classifier import SequenceClassifier
from server.core.explaining import Explanations
from server.core.types import (DEFAULT_OPTIONS, CorePolicy, Explanation, ModelInfo, PredictOptions, Prediction,
                               RecheckInfo, Truncation, WindowPrediction, check_pair_truncation, check_pairs,
                               check_top_k, ranked, resolve_truncation)
from server.engines import heads
from server.engines.recheck import rechecked_among
from server.engines.runner import Encoding, Row
from server.errors import InvalidInput, NotReady

log = logging.getLogger(__name__)

WARMUP_LENGTHS = (8, 32, 128)


class InferenceCore:
    def __init__(self, classifier: SequenceClassifier, policy: CorePolicy = CorePolicy(), *,
                 on_batch=None, executor: Executor | None = None):
        """``on_batch(texts, padded tokens, waits, seconds)`` hears of every batch (metrics); ``executor``: the
        thread the classifier was loaded on (``server.batching.model_thread``)."""
        self.classifier = classifier
        self.policy = policy
        self.batcher = DynamicBatcher(classifier.runner, policy.batching, on_batch=on_batch, executor=executor)
        self.ready = False
        self.stopping = False
        self.calls = 0  # predict and explain calls admitted and not yet answered
        self._quiet: asyncio.Event | None = None  # set when the last of them ends, once retire() waits
        self.window_plan = WindowPlan.for_model(classifier.max_tokens, classifier.tokenizer.specials,
                                                policy.long_text.window_tokens, policy.long_text.overlap_tokens,
                                                policy.long_text.max_windows)
        self.explanations = Explanations(classifier, policy.explain, policy.batching.max_batch_tokens, self.batcher)

    async def start(self) -> None:
        """Start the batch worker and warm the model up; ``ready`` turns true when it is done."""
        self.batcher.start()
        await self.explanations.start()
        if self.policy.warmup:
            started = time.perf_counter()
            shapes = self._warm_up_batches()
            for (size, width, batch) in shapes:
                seconds = await self.batcher.run_in_worker(self.classifier.runner.timed, batch)
                self.batcher.observe_cost(size, width, seconds)
            log.info("warm-up: %d batch shapes in %.1fs; batch cost: %s", len(shapes), time.perf_counter() - started,
                     "; ".join(f"{key}: {est.fixed_seconds * 1000:.2f} ms + {est.seconds_per_token * 1e6:.2f} us/token"
                               f" + {est.seconds_per_token_width * 1e9:.2f} ns/token/width"
                               for key, est in self.batcher.cost_estimates().items()))
        self.ready = True

    def _warm_up_batches(self) -> list[tuple[int, int, list[Encoding]]]:
        """A batch of each shape the first callers will send, so they never pay for lazy initialisation; its
        time seeds the batcher's cost estimate. (texts, width, batch)."""
        tokens = self.classifier.encode(["warm up"])[0].input_ids
        batching = self.policy.batching
        shapes = []
        for length in (n for n in WARMUP_LENGTHS if n <= self.classifier.max_tokens):
            encoding = Encoding(tokens[:1] + tokens[1:2] * (length - 2) + tokens[-1:], truncated=False)
            for size in sorted({1, min(8, batching.max_batch_size), batching.max_batch_size}):
                if size * length <= batching.max_batch_tokens:
                    shapes.append((size, length, [encoding] * size))
        return shapes

    async def stop(self) -> None:
        """Refuse new work and finish what is queued."""
        self.ready = False
        self.stopping = True
        await self.batcher.drain()

    async def retire(self) -> None:
        """Once nothing routes calls here any more (a newer version took over, or the model was unloaded):
        let every call already admitted finish, queued or not yet queued (an explanation waiting for its
        turn), then stop."""
        if self.calls:
            self._quiet = asyncio.Event()
            await self._quiet.wait()
        await self.stop()

    def _ended(self) -> None:
        self.calls -= 1
        if not self.calls and self._quiet is not None:
            self._quiet.set()

    def check_ready(self) -> None:
        if not self.ready:
            raise NotReady("the server is shutting down" if self.stopping else "the model is not ready yet")

    def validate(self, texts: list[str]) -> None:
        limits = self.policy.limits
        if not texts:
            raise InvalidInput("no texts were given", field="texts")
        if len(texts) > limits.max_batch_texts:
            raise InvalidInput(f"{len(texts)} texts in one call; the limit is {limits.max_batch_texts}", field="texts")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInput(f"text {index} is not a string", field=f"texts[{index}]")
            if not text.strip():
                raise InvalidInput(f"text {index} is empty", field=f"texts[{index}]")
            if len(text) > limits.max_text_chars:
                raise InvalidInput(f"text {index} has {len(text)} characters; the limit is {limits.max_text_chars}",
                                   field=f"texts[{index}]")

    async def predict(self, texts: list[str], options: PredictOptions = DEFAULT_OPTIONS,
                      timeout: float | None = None, pairs: Sequence[str | None] | None = None) -> list[Prediction]:
        """Predictions for ``texts`` in input order; all texts of one call are validated before any runs.

        With truncation "chunk" every window of every text is queued as a text of its own (one
        all-or-nothing admission for the call), and each text's windows are combined afterwards. ``pairs``: each
        text's second segment (None: none; ``server.core.types.check_pairs``), encoded as one input with it."""
        self.check_ready()
        self.calls += 1  # counted until answered: retire() waits for it
        try:
            self.validate(texts)
            mode = resolve_truncation(options.truncation, self.policy.long_text.default)
            if not 0.0 <= options.threshold <= 1.0:
                raise InvalidInput("threshold must be between 0 and 1", field="options.threshold")
            check_top_k(options.top_k, "options.top_k")
            if pairs is not None:
                check_pairs(pairs, len(texts), self.policy.limits.max_text_chars)
            if pairs is not None and any(p is not None for p in pairs):
                check_pair_truncation(mode)
                encodings = self.classifier.tokenizer.encode_pairs(texts, list(pairs),
                                                                   truncate=mode is Truncation.TRUNCATE)
                return await self._run(encodings, options, timeout)
            if mode is not Truncation.CHUNK:
                encodings = self.classifier.encode(texts, truncate=mode is Truncation.TRUNCATE)
                self._check_queue_room(len(encodings))
                rows = await self.batcher.submit(encodings, timeout=timeout)
                return [self.prediction(logits, outputs, options, e.num_tokens, e.truncated)
                        for (logits, outputs), e in zip(rows, encodings)]
            groups = self.classifier.tokenizer.windows(texts, self.window_plan)
            flat = [window.encoding for group in groups for window in group]
            self._check_queue_room(len(flat))
            rows = await self.batcher.submit(flat, timeout=timeout)
            predictions, first = [], 0
            for group in groups:
                predictions.append(self._combined(group, rows[first : first + len(group)], options))
                first += len(group)
            return predictions
        finally:
            self._ended()

    async def _run(self, encodings: list[Encoding], options: PredictOptions, timeout: float | None) -> list[Prediction]:
        self._check_queue_room(len(encodings))
        rows = await self.batcher.submit(encodings, timeout=timeout)
        return [self.prediction(logits, outputs, options, e.num_tokens, e.truncated)
                for (logits, outputs), e in zip(rows, encodings)]

    def _check_queue_room(self, windows: int) -> None:
        if windows > self.batcher.max_queue_size:
            raise InvalidInput(f"the call needs {windows} windows; the server queues at most "
                               f"{self.batcher.max_queue_size}: send fewer or shorter texts", field="texts")

    def prediction(self, logits: Sequence[float], outputs: Sequence[float], options: PredictOptions,
                   num_tokens: int, truncated: bool, **extra) -> Prediction:
        """One text's answer from its row: the head's decision (``server.engines.heads``) in plain Python."""
        labels = self.classifier.labels
        decision = heads.decide(self.classifier.problem_type, outputs, options.threshold)
        # the values a label is scored by: its probability, or with raw_scores (TEI's) its logit
        values = decision.probabilities
        if values is not None and options.raw_scores:
            values = list(logits)
        return Prediction(
            label=labels[decision.class_id],
            class_id=decision.class_id,
            scores={} if values is None else dict(zip(labels, values)),
            top=ranked(labels, values, options.top_k) if options.top_k and values is not None else None,
            logits=list(logits) if options.return_logits else None,
            num_tokens=num_tokens,
            truncated=truncated,
            predicted_labels=None if decision.predicted is None else [labels[i] for i in decision.predicted],
            score=decision.score,
            **extra,
        )

    def _combined(self, windows: list[Window], rows: list[Row], options: PredictOptions) -> Prediction:
        """One long text's prediction from its windows' rows (logits, outputs), weighted by their tokens."""
        per_window = None
        if options.return_windows:
            per_window = [WindowPrediction(w.start, w.end, self.prediction(logits, outputs, options, w.encoding.num_tokens, False))
                          for w, (logits, outputs) in zip(windows, rows)]
        logits = chunking.token_weighted_mean(np.array([r[0] for r in rows]), windows)
        outputs = chunking.token_weighted_mean(np.array([r[1] for r in rows]), windows)
        return self.prediction(logits.tolist(), outputs.tolist(), options, sum(w.encoding.num_tokens for w in windows),
                               False, windows=len(windows), window_predictions=per_window)

    async def explain(self, text: str, *, label: str | None = None, truncation: str | None = None,
                      steps: int | None = None, timeout: float | None = None, pair: str | None = None) -> Explanation:
        """Attribute one text's prediction (or ``label``) to its words, and with ``pair`` to its pair's words too
        (``server.core.explaining``)."""
        self.check_ready()
        self.calls += 1
        try:
            return await self._explain(text, label, truncation, steps, timeout, pair)
        finally:
            self._ended()

    async def _explain(self, text: str, label: str | None, truncation: str | None, steps: int | None,
                       timeout: float | None, pair: str | None = None) -> Explanation:
        try:
            self.validate([text])
        except InvalidInput as error:
            raise InvalidInput(error.message.replace("text 0", "the text"), field="text") from None
        if pair is not None:
            try:
                check_pairs([pair], 1, self.policy.limits.max_text_chars)
            except InvalidInput as error:
                raise InvalidInput(error.message.replace("of text 0", "").replace("the pair", "the text pair"),
                                   field="text_pair") from None
        mode = resolve_truncation(truncation, self.policy.long_text.default, explaining=True)
        result = await self.explanations.explain(text, label=label, truncate=mode is Truncation.TRUNCATE, steps=steps,
                                                 timeout=timeout, pair=pair)
        outputs = heads.outputs(self.classifier.problem_type, result.logits[None, :])[0]
        prediction = self.prediction(result.logits.tolist(), outputs.tolist(), DEFAULT_OPTIONS, result.num_tokens,
                                     result.truncated)
        return Explanation(prediction=prediction, target=self.classifier.labels[result.attributions.target],
                           words=result.attributions.words, convergence_delta=result.attributions.convergence_delta,
                           steps=result.attributions.steps, forward_passes=result.attributions.forward_passes)

    def model_info(self) -> ModelInfo:
        c = self.classifier
        return ModelInfo(
            model_name=c.name, model_source=c.source, weights_sha256=c.weights_sha256, labels=list(c.labels),
            max_input_tokens=c.max_tokens, device=c.device_name, dtype=c.dtype_name, engine=c.engine_name,
            problem_type=c.problem_type, policy=self.policy, window_tokens=self.window_plan.window_tokens,
            overlap_tokens=self.window_plan.overlap_tokens, batch_costs=self.batcher.cost_estimates(),
            recheck=self.recheck_info(),
        )

    def recheck_info(self) -> RecheckInfo | None:
        rechecked = rechecked_among(self.classifier.engine)
        if rechecked is None:
            return None
        texts, count = rechecked.counts()
        return RecheckInfo(margin=rechecked.margin, engine=rechecked.exact.key, texts=texts, rechecked=count)
