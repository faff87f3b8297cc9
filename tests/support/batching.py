"""Batcher tests' stand-ins: a fake model runner that records batches and can be held busy."""

from __future__ import annotations

import asyncio
import threading

from server.batching.policy import BatchPolicy
from server.batching.queue import DynamicBatcher
from server.engines.runner import Encoding


def enc(tokens: int) -> Encoding:
    return Encoding(input_ids=list(range(tokens)), truncated=False)


class FakeModel:
    """A runner that records every batch; optionally blocks until released, so tests control when the model
    is busy. Each text's row is (its length, 0); ``key`` names the engine of a batch size."""

    def __init__(self, fail_on: int | None = None, key=lambda size: "model"):
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on = fail_on
        self.calls_started = 0
        self.key = key

    def run(self, encodings: list[Encoding]) -> list:
        self.calls_started += 1
        self.gate.wait(10)
        lengths = [e.num_tokens for e in encodings]
        self.batches.append(lengths)
        if self.fail_on in lengths:
            raise RuntimeError("boom")
        return [[float(n), 0.0] for n in lengths]


async def until(condition) -> None:
    """Yield to the event loop until ``condition()`` holds (a readiness check, not a fixed sleep)."""
    while not condition():
        await asyncio.sleep(0.001)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def make(model, cost=None, **policy):
    """A started batcher over ``model`` with a small policy (``policy`` changes BatchPolicy fields)."""
    values = dict(max_batch_size=4, max_batch_tokens=1000, max_queue_size=16)
    values.update(policy)
    batcher = DynamicBatcher(model, BatchPolicy(**values), cost=cost)
    batcher.start()
    return batcher


async def queue_behind_busy_model(batcher, model, groups):
    """Occupy the model with one call, queue ``groups`` behind it, then release the model."""
    model.gate.clear()
    first = asyncio.create_task(batcher.submit([enc(1)]))
    await until(lambda: model.calls_started == 1)
    tasks = [asyncio.create_task(batcher.submit(g)) for g in groups]
    await until(lambda: batcher.queue_depth == sum(map(len, groups)))
    model.gate.set()
    return await first, await asyncio.gather(*tasks)


