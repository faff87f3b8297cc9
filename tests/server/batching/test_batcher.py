"""Unit tests of the dynamic batcher with an in-process fake model (no torch, no sockets)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.batching.cost import CostEstimate
from server.errors import DeadlineExceeded, NotReady, Overloaded, ServiceError
from tests.support.batching import FakeModel, enc, make, queue_behind_busy_model, run, until


def test_a_lone_request_runs_at_once_without_waiting_for_company():
    async def scenario():
        model = FakeModel()
        batcher = make(model)
        rows = await batcher.submit([enc(5)])
        await batcher.drain()
        return model.batches, rows

    batches, rows = run(scenario())
    assert batches == [[5]]
    assert rows[0][0] == 5.0


def test_queued_requests_share_batches_up_to_max_batch_size_and_answer_each_caller():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_size=4)
        _, results = await queue_behind_busy_model(batcher, model, [[enc(10)] for _ in range(10)])
        await batcher.drain()
        return model.batches, results

    batches, results = run(scenario())
    assert batches[0] == [1]
    assert [len(b) for b in batches[1:]] == [4, 4, 2]
    assert all(r[0][0] == 10.0 for r in results)


def test_token_budget_limits_padded_tokens_per_batch():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_size=8, max_batch_tokens=100)
        await queue_behind_busy_model(batcher, model, [[enc(30)] for _ in range(6)])
        await batcher.drain()
        return model.batches

    batches = run(scenario())
    assert all(max(b) * len(b) <= 100 for b in batches)
    assert sum(len(b) for b in batches) == 7


def test_batches_group_texts_of_similar_length():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_size=2)
        await queue_behind_busy_model(batcher, model, [[enc(n)] for n in (5, 100, 6, 101)])
        await batcher.drain()
        return model.batches

    batches = run(scenario())
    assert sorted(map(sorted, batches[1:])) == [[5, 6], [100, 101]]


def test_full_queue_refuses_at_once_and_keeps_serving_accepted_calls():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_size=3)
        model.gate.clear()
        busy = asyncio.create_task(batcher.submit([enc(1)]))
        await until(lambda: model.calls_started == 1)
        accepted = [asyncio.create_task(batcher.submit([enc(2)])) for _ in range(3)]
        await until(lambda: batcher.queue_depth == 3)
        with pytest.raises(Overloaded):
            await batcher.submit([enc(2)])
        with pytest.raises(Overloaded):  # a multi-text call is all or nothing
            await batcher.submit([enc(2), enc(2)])
        model.gate.set()
        results = await asyncio.gather(busy, *accepted)
        await batcher.drain()
        return results

    assert len(run(scenario())) == 4


def test_expired_and_cancelled_calls_never_reach_the_model():
    async def scenario():
        model = FakeModel()
        batcher = make(model)
        model.gate.clear()
        busy = asyncio.create_task(batcher.submit([enc(1)]))
        await until(lambda: model.calls_started == 1)
        expired = asyncio.create_task(batcher.submit([enc(7)], timeout=0.001))
        cancelled = asyncio.create_task(batcher.submit([enc(8)]))
        await until(lambda: batcher.queue_depth == 2)
        cancelled.cancel()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await until(lambda: loop.time() - start > 0.002)  # the 1 ms deadline has passed
        model.gate.set()
        await busy
        with pytest.raises(DeadlineExceeded):
            await expired
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await batcher.drain()
        return model.batches, batcher.stats.dropped

    batches, dropped = run(scenario())
    assert batches == [[1]]
    assert dropped == 2


def test_a_failing_batch_fails_only_its_calls():
    async def scenario():
        model = FakeModel(fail_on=13)
        batcher = make(model, max_batch_size=1)
        with pytest.raises(ServiceError):
            await batcher.submit([enc(13)])
        ok = await batcher.submit([enc(3)])
        await batcher.drain()
        return ok

    assert run(scenario())[0][0] == 3.0


def test_drain_finishes_queued_work_then_refuses_new_calls():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_size=1)
        model.gate.clear()
        queued = [asyncio.create_task(batcher.submit([enc(n)])) for n in (1, 2, 3)]
        await until(lambda: model.calls_started == 1 and batcher.queue_depth == 2)
        draining = asyncio.create_task(batcher.drain())
        await asyncio.sleep(0)
        with pytest.raises(NotReady):
            await batcher.submit([enc(4)])
        model.gate.set()
        await draining
        return [r[0][0] for r in await asyncio.gather(*queued)]

    assert run(scenario()) == [1.0, 2.0, 3.0]


async def _one_running_one_queued(batcher, model, running_text, queued_text):
    """Hold the model with one call and queue one more behind it (accepted: nothing is queued ahead)."""
    model.gate.clear()
    running = asyncio.create_task(batcher.submit([running_text]))
    await until(lambda: model.calls_started == 1)
    queued = asyncio.create_task(batcher.submit([queued_text]))
    await until(lambda: batcher.queue_depth == 1)
    return running, queued


def test_time_bound_refuses_at_once_when_the_queued_work_exceeds_it():
    """max_queue_seconds: (queued tokens + what is left of the running batch) / measured token rate, plus
    the call's own batch; a call is refused at once when that would take longer than the bound."""
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_size=100, max_batch_tokens=10_000, max_queue_seconds=5.0)
        batcher.rate.observe(tokens=100, seconds=1.0)  # as if backlogs drained 100 tokens per second
        # the running text is about 10 s of work at that rate
        running, first = await _one_running_one_queued(batcher, model, enc(1000), enc(50))
        estimate = batcher.queued_seconds
        with pytest.raises(Overloaded, match="s of work"):
            await batcher.submit([enc(20)])
        model.gate.set()
        rows = await asyncio.gather(running, first)
        await batcher.drain()
        return estimate, rows, model.batches

    estimate, rows, batches = run(scenario())
    assert 5.0 < estimate <= (1000 + 50) / 100
    assert [r[0][0] for r in rows] == [1000.0, 50.0]  # the accepted calls answered
    assert batches == [[1000], [50]]  # the refused text never reached the model


def test_time_bound_never_refuses_a_call_with_nothing_queued_ahead():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_tokens=10_000, max_queue_seconds=0.5)
        batcher.rate.observe(tokens=10, seconds=1.0)  # 10 tokens/s: the call below alone is 30 s of work
        rows = await batcher.submit([enc(300)])
        await batcher.drain()
        return rows

    assert run(scenario())[0][0] == 300.0


def test_token_rate_is_learned_from_batches_that_ran_with_work_waiting():
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_seconds=1.0)
        await batcher.submit([enc(5)])  # alone: tells nothing about how fast a backlog drains
        alone = batcher.rate.tokens_per_second
        model.gate.clear()
        busy = asyncio.create_task(batcher.submit([enc(1)]))
        await until(lambda: model.calls_started == 2)
        behind = [asyncio.create_task(batcher.submit([enc(3)])) for _ in range(3)]
        await until(lambda: batcher.queue_depth == 3)
        model.gate.set()
        await asyncio.gather(busy, *behind)
        await batcher.drain()
        return alone, batcher.rate.tokens_per_second

    alone, loaded = run(scenario())
    assert alone is None and loaded is not None and loaded > 0


def test_time_bound_also_refuses_when_the_oldest_queued_text_has_waited_past_it():
    """Before any rate is measured (or when it is wrong), the observed wait of the oldest queued text
    still bounds admission."""
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_seconds=0.01)
        assert batcher.rate.tokens_per_second is None  # nothing measured: the prediction says 0 s
        model.gate.clear()
        running = asyncio.create_task(batcher.submit([enc(4)]))
        await until(lambda: model.calls_started == 1)
        waiting = asyncio.create_task(batcher.submit([enc(4)]))
        await until(lambda: batcher.queue_depth == 1)
        loop = asyncio.get_running_loop()
        enqueued = loop.time()
        await until(lambda: loop.time() - enqueued > 0.05)  # the queued text is now older than the bound
        with pytest.raises(Overloaded, match="s of work"):
            await batcher.submit([enc(4)])
        model.gate.set()
        await asyncio.gather(running, waiting)
        await batcher.drain()
        return model.batches

    assert run(scenario()) == [[4], [4]]


def test_time_bound_counts_the_calls_own_batch():
    """A model whose batches cost 40 s each (given cost; backlogs drained 1 token per 40 s): a call queued
    now waits for the running batch, the text ahead and then its own batch (120 s), past the bound of
    100 s: it is refused at once, where the work ahead alone (80 s) is under the bound."""
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_size=100, max_batch_tokens=10_000, max_queue_seconds=100.0,
                       cost=CostEstimate(fixed_seconds=40.0, seconds_per_token=0.0))
        batcher.rate.observe(tokens=1, seconds=40.0)
        # the running text is 40 s at the learned rate
        running, queued = await _one_running_one_queued(batcher, model, enc(1), enc(1))
        ahead = batcher.queued_seconds
        with pytest.raises(Overloaded, match="s of work"):
            await batcher.submit([enc(1)])
        model.gate.set()
        await asyncio.gather(running, queued)
        await batcher.drain()
        return ahead

    assert 60.0 < run(scenario()) <= 80.0  # the work ahead alone is under the bound: the own batch tipped it


def test_a_large_call_is_priced_by_its_first_batch_not_whole():
    """64 one-token texts against batches of at most 4, 0.25 s a text, bound 10 s: pricing the call whole
    (16 s) would refuse it whenever anything is queued; its first batch (1 s) plus the work ahead fits."""
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_size=100, max_batch_tokens=10_000, max_queue_seconds=10.0,
                       cost=CostEstimate(fixed_seconds=0.0, seconds_per_token=0.25))
        batcher.rate.observe(tokens=4, seconds=1.0)
        running, queued = await _one_running_one_queued(batcher, model, enc(1), enc(1))
        large = asyncio.create_task(batcher.submit([enc(1)] * 64))
        await until(lambda: batcher.queue_depth == 65)  # accepted: all 64 queued
        model.gate.set()
        rows = await large
        await asyncio.gather(running, queued)
        await batcher.drain()
        return len(rows)

    assert run(scenario()) == 64


def test_time_bound_is_off_when_max_queue_seconds_is_0():
    """The same queue that the bound of 5 s refuses above is accepted whole with max_queue_seconds=0: only
    the count bound applies."""
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_queue_size=100, max_batch_tokens=10_000, max_queue_seconds=0)
        batcher.rate.observe(tokens=100, seconds=1.0)  # 100 tokens/s: the queue below is 10 s of work
        model.gate.clear()
        running = asyncio.create_task(batcher.submit([enc(1000)]))
        await until(lambda: model.calls_started == 1)
        queued = [asyncio.create_task(batcher.submit([enc(50)])) for _ in range(3)]
        await until(lambda: batcher.queue_depth == 3)
        model.gate.set()
        rows = await asyncio.gather(running, *queued)
        await batcher.drain()
        return rows

    assert [r[0][0] for r in run(scenario())] == [1000.0, 50.0, 50.0, 50.0]
