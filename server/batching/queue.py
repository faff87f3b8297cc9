"""Dynamic batching: one queue for every caller, one model worker, no fixed waiting window.

Whenever the model is free the worker takes what is waiting: the oldest text first (so nothing
starves), then the queued texts closest to it in length, up to ``max_batch_size`` texts and
``max_batch_tokens`` padded tokens, stopping where the batch gets the most real tokens done per
second by the cost it has learned for the engine (``server.batching.cost``): padding is real work for
bert-base on a CPU (29 texts/s with mixed-length batches of 32, 47 with length-matched batches of 8)
and nearly free for a small model whose pass is mostly fixed cost. A lone request therefore runs at
once, and under load batches fill up by themselves while the previous one runs. The model runs on a dedicated thread, off the
event loop. Calls whose caller has gone (cancelled, or past its deadline) are dropped before they
reach the model.

Admission is bounded twice, and both refuse at once (RESOURCE_EXHAUSTED) instead of queueing without
bound: by count (``max_queue_size`` texts) and by time (``max_queue_seconds``: the work already queued
ahead, in real tokens at the rate recent backlogs drained, or the time the oldest queued text has
already waited, whichever is more, plus the call's own texts as a batch at the learned cost). Under the time bound a
batch is kept to half of it by its learned cost, since every text in and behind a batch waits for all
of it. The time bound is what keeps accepted calls' latency in check whatever the model's size: 32
queued texts are 0.1 s of work for MiniLM on two cores and two seconds for bert-base.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

from server.batching.admission import DrainRate, wait_estimate
from server.batching.cost import BatchCost, CostEstimate, best_prefix, prior
from server.batching.model_thread import model_thread
from server.batching.policy import BatchPolicy
from server.engines.runner import Encoding
from server.errors import DeadlineExceeded, NotReady, Overloaded, ServiceError

log = logging.getLogger(__name__)


class BatchRunner(Protocol):
    """What the batcher runs batches on (``server.engines.runner.ModelRunner``): a batch's rows, and the
    name of the engine that runs a batch of a size (costs are learned per engine)."""

    def run(self, encodings: list[Encoding]) -> list: ...

    def key(self, batch_size: int) -> str: ...


@dataclass
class BatchStats:
    """What the last batches looked like; read by metrics and tests."""

    batches: int = 0
    texts: int = 0
    padded_tokens: int = 0
    dropped: int = 0
    sizes: list[int] = field(default_factory=list)


@dataclass
class _Item:
    encoding: Encoding
    future: asyncio.Future
    deadline: float | None
    enqueued: float


class DynamicBatcher:
    def __init__(self, runner: BatchRunner, policy: BatchPolicy = BatchPolicy(), *,
                 on_batch: Callable[[int, int, list[float], float], None] | None = None,
                 executor: Executor | None = None, cost: CostEstimate | None = None):
        """``runner`` runs each batch on the model thread (``executor``); ``on_batch(texts, padded tokens,
        waits, seconds)`` hears of each batch (metrics); ``cost``: given costs for every engine instead of
        learned ones (tests)."""
        self.runner = runner
        self.policy = policy
        self.max_batch_size = policy.max_batch_size
        self.max_batch_tokens = policy.max_batch_tokens
        self.max_queue_size = policy.queue_size
        self.max_queue_seconds = policy.time_bound
        self.rate = DrainRate(policy.drain_smoothing)
        self._prior = prior(policy.prior_fixed_tokens)
        self._given_cost = BatchCost(given=cost) if cost else None
        self.costs: dict[str, BatchCost] = {}
        self._queued_tokens = 0  # real tokens of the texts in the queue
        self._running_tokens = 0  # real tokens of the batch on the model now
        self._running_since = 0.0
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._executor = executor or model_thread(policy.model_nice)
        self._worker: asyncio.Task | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = BatchStats()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def queued_seconds(self) -> float:
        """Estimated time until the model could start on a text queued now: the queued tokens, plus what
        is left of the batch running now."""
        running = self.rate.seconds_for(self._running_tokens)
        if running:
            running = max(0.0, running - (asyncio.get_running_loop().time() - self._running_since))
        return self.rate.seconds_for(self._queued_tokens) + running

    @property
    def _costs_known(self) -> bool:
        """Whether estimates are in seconds: given, or learned from a batch (the prior is in token units)."""
        return self._given_cost is not None or any(cost.batches for cost in self.costs.values())

    @property
    def max_batch_seconds(self) -> float | None:
        """Under the time bound, a batch is estimated to take at most half of it: the texts queued behind
        a batch wait for all of it, so a slow model (bert-base on two cores: ~60 ms a text) runs
        batches of 8 rather than 32 and an accepted call still ends within the bound. None before the
        engines' costs are measured (the prior is in units of a token's work, not seconds)."""
        if not self.max_queue_seconds or not self._costs_known:
            return None
        return self.max_queue_seconds * self.policy.batch_share_of_bound

    def _own_seconds(self, encodings: Sequence[Encoding]) -> float:
        """What the call's first batch takes by the learned cost (at most ``max_batch_size`` of its texts,
        and no more than the batch cap: a large call is split, and pricing it whole would refuse it
        whenever anything is queued); 0 before any cost is learned."""
        if not self._costs_known:
            return 0.0
        first = min(len(encodings), self.max_batch_size)
        longest = max(e.num_tokens for e in encodings)
        own = self.estimated_seconds(first, first * longest, longest)
        cap = self.max_batch_seconds
        return min(own, cap) if cap is not None else own

    def cost_for(self, batch_size: int) -> BatchCost:
        if self._given_cost is not None:
            return self._given_cost
        key = self.runner.key(batch_size)
        cost = self.costs.get(key)
        if cost is None:
            cost = self.costs[key] = BatchCost(self.policy.cost_forgetting, prior_fixed_tokens=self.policy.prior_fixed_tokens)
        return cost

    def estimated_seconds(self, batch_size: int, padded_tokens: int, width: int) -> float:
        """What a batch of this shape is expected to take on its engine (the prior before any data)."""
        # an engine with no batches yet borrows another's estimate: the rates compared must share units
        estimate = self.cost_for(batch_size).estimate() or next(iter(self.cost_estimates().values()), self._prior)
        return estimate.seconds(padded_tokens, width)

    def observe_cost(self, batch_size: int, width: int, seconds: float) -> None:
        """Learn from a batch run outside the queue (the warm-up), as from one run by the worker."""
        self.cost_for(batch_size).observe(batch_size * width, width, seconds)

    def cost_estimates(self) -> dict[str, CostEstimate]:
        """The learned cost of each engine that has run a batch."""
        return {key: est for key, cost in self.costs.items() if (est := cost.estimate()) is not None}

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="batcher")

    async def run_in_worker(self, fn: Callable, *args):
        """Run ``fn`` on the model thread (warm-up uses it, so it never races a batch)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, encodings: Sequence[Encoding], timeout: float | None = None) -> list:
        """Queue the texts of one call and wait for their rows (the runner's); all or nothing is queued."""
        if self._closing:
            raise NotReady("the server is shutting down")
        if len(self._queue) + len(encodings) > self.max_queue_size:
            raise Overloaded(
                f"the queue is full ({len(self._queue)} of {self.max_queue_size} texts waiting); retry later"
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.max_queue_seconds and self._queue:
            # predicted: the work ahead at the measured rate; observed: how long the oldest text has waited
            # already (it catches what the prediction misses: a slower model under load, texts overtaken
            # by shorter ones); then the call's own texts, run as a batch at the learned cost (recent batches'
            # average time instead refused many calls at 64 closed-loop callers: docs/performance.md)
            ahead = wait_estimate(self.queued_seconds, now - self._queue[0].enqueued, self._own_seconds(encodings))
            if ahead > self.max_queue_seconds:
                raise Overloaded(
                    f"this call would wait about {ahead:.1f}s of work (limit {self.max_queue_seconds:g}s); retry later"
                )
        deadline = now + timeout if timeout is not None else None
        items = [_Item(e, loop.create_future(), deadline, now) for e in encodings]
        self._queue.extend(items)
        self._queued_tokens += sum(e.num_tokens for e in encodings)
        self._idle.clear()
        self._wakeup.set()
        try:
            if len(items) == 1:  # the common case: no gathering future to build
                return [await items[0].future]
            return list(await asyncio.gather(*(item.future for item in items)))
        except BaseException:
            for item in items:  # the caller has gone: whatever is still queued will be skipped
                item.future.cancel()
            raise

    def _take_batch(self) -> list[_Item]:
        now = asyncio.get_running_loop().time()
        live = deque()
        for item in self._queue:
            if item.future.done():
                self.stats.dropped += 1
            elif item.deadline is not None and now >= item.deadline:
                item.future.set_exception(DeadlineExceeded("the deadline passed while the text was queued"))
                self.stats.dropped += 1
            else:
                live.append(item)
        self._queue = live
        self._queued_tokens = sum(item.encoding.num_tokens for item in live)
        if not live:
            return []
        oldest = live[0]
        window = list(live)[1 : self.max_batch_size * self.policy.lookahead_batches]
        window.sort(key=lambda item: abs(item.encoding.num_tokens - oldest.encoding.num_tokens))
        candidates = [oldest, *window]
        picked = best_prefix([item.encoding.num_tokens for item in candidates], self.estimated_seconds,
                             max_batch_size=self.max_batch_size, max_batch_tokens=self.max_batch_tokens,
                             max_seconds=self.max_batch_seconds)
        batch = [candidates[i] for i in picked]
        real = sum(item.encoding.num_tokens for item in batch)
        taken = {id(item) for item in batch}
        self._queue = deque(item for item in live if id(item) not in taken)
        self._queued_tokens -= real
        self._running_tokens = real
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self._take_batch()
            if not batch:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            started = self._running_since = loop.time()
            backlog = len(batch) > 1 or bool(self._queue)  # formed under load: measures how fast a queue drains
            try:
                rows = await loop.run_in_executor(self._executor, self.runner.run, [i.encoding for i in batch])
            except Exception as exc:  # the model failed on this batch: fail its calls, keep serving the rest
                log.exception("inference failed for a batch of %d texts", len(batch))
                error = exc if isinstance(exc, ServiceError) else ServiceError(f"inference failed: {exc}")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            finally:
                self._running_tokens = 0
            padded = len(batch) * max(i.encoding.num_tokens for i in batch)
            elapsed = loop.time() - started
            if backlog:
                self.rate.observe(sum(i.encoding.num_tokens for i in batch), elapsed)
            self.cost_for(len(batch)).observe(padded, padded // len(batch), elapsed)
            self.stats.batches += 1
            self.stats.texts += len(batch)
            self.stats.padded_tokens += padded
            self.stats.sizes.append(len(batch))
            del self.stats.sizes[:-1000]
            if self._on_batch:
                self._on_batch(len(batch), padded, [started - i.enqueued for i in batch], elapsed)
            for item, row in zip(batch, rows):
                if not item.future.done():
                    item.future.set_result(row)

    async def drain(self) -> None:
        """Refuse new calls, let every queued text finish, then stop the worker."""
        self._closing = True
        await self._idle.wait()
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)
