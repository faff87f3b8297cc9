"""Explanations in the core: how many may run, whose turn it is on the model thread, and the deadline.

At most ``ExplainPolicy.max_concurrent`` run or wait at once (RESOURCE_EXHAUSTED at once past it); they
take the model thread one at a time, between batches, so a batch waits behind one explanation at most.
The attribution itself is ``server.engines.explainer`` (Integrated Gradients on a float32 torch model).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from server.core.types import ExplainPolicy
from server.engines.explainer import Attributions, Explainer, float32_model
from server.errors import DeadlineExceeded, InvalidInput, Overloaded, ServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainResult:
    attributions: Attributions
    num_tokens: int
    truncated: bool

    @property
    def logits(self) -> np.ndarray:
        return self.attributions.logits


class Explanations:
    def __init__(self, classifier, policy: ExplainPolicy, max_batch_tokens: int, batcher):
        self.classifier = classifier
        self.policy = policy
        self.max_batch_tokens = max_batch_tokens
        self.batcher = batcher
        self._explainer: Explainer | None = None
        self._running = 0  # Explain calls running or waiting now
        self._turn = asyncio.Lock()  # one explanation on the model thread at a time

    async def start(self) -> None:
        """Load the explainer before SERVING: Captum's first import can take minutes (matplotlib builds its font
        cache), and a server predicting in bf16 or int8 loads a float32 copy to explain with."""
        if self.policy.max_concurrent:
            await self.batcher.run_in_worker(self._load)

    def _load(self) -> None:
        c = self.classifier
        self._explainer = Explainer(float32_model(c.model, c.source, c.device), pad_token_id=c.tokenizer.pad_token_id,
                                    max_batch_tokens=self.max_batch_tokens)

    def _check(self, label: str | None, steps: int) -> None:
        if self.policy.max_concurrent == 0:
            raise InvalidInput("explanations are turned off on this server (--max-concurrent-explanations 0)")
        if not 1 <= steps <= self.policy.max_steps:
            raise InvalidInput(f"steps must be between 1 and {self.policy.max_steps}", field="steps")
        labels = self.classifier.labels
        if label and label not in labels:
            raise InvalidInput(f"unknown label {label!r}; the model's labels are {', '.join(labels)}", field="label")
        if self._running >= self.policy.max_concurrent:
            raise Overloaded(f"{self._running} explanations are running or waiting, the limit; retry later")

    async def explain(self, text: str, *, label: str | None, truncate: bool, steps: int | None,
                      timeout: float | None, pair: str | None = None) -> ExplainResult:
        steps = steps or self.policy.default_steps
        self._check(label, steps)
        encoding = self.classifier.tokenizer.for_explanation(text, truncate=truncate, pair=pair)
        target = self.classifier.labels.index(label) if label else None
        self._running += 1
        stop_at = time.monotonic() + timeout if timeout is not None else None
        cancelled = threading.Event()
        try:
            async with self._turn:
                if stop_at is not None and time.monotonic() >= stop_at:
                    raise DeadlineExceeded("the deadline passed while the explanation waited for its turn")
                attributions = await self.batcher.run_in_worker(self._on_model_thread, text, encoding, target, steps,
                                                                stop_at, cancelled, pair)
        except asyncio.CancelledError:
            cancelled.set()  # the caller went away: the model thread stops at its next forward pass
            raise
        finally:
            self._running -= 1
        return ExplainResult(attributions, num_tokens=len(encoding.input_ids), truncated=encoding.truncated)

    def _on_model_thread(self, text, encoding, target, steps, stop_at, cancelled, pair=None) -> Attributions:
        if self._explainer is None:
            self._load()
        # no label named: the explainer takes the largest logit, which is the predicted label of every head
        try:
            return self._explainer.explain(text, encoding, target=target, steps=steps, stop_at=stop_at,
                                           cancelled=cancelled, pair=pair)
        except ServiceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed explanation fails its call, never the server
            log.exception("explanation failed")
            raise ServiceError(f"the explanation failed: {exc}") from exc
