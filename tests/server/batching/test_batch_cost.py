"""The batch cost the batcher learns, and the batch it forms from given costs (no clocks involved)."""

from __future__ import annotations

import asyncio

import pytest

from server.batching.cost import BatchCost, CostEstimate, best_prefix
from tests.support.batching import FakeModel, enc, make, queue_behind_busy_model, run

# bert-base on a 2-core CPU: a forward pass is almost all per-token arithmetic
PER_TOKEN_HEAVY = CostEstimate(fixed_seconds=0.002, seconds_per_token=0.001)
# MiniLM: most of a short batch's time is fixed per-call cost; padding is nearly free
FIXED_HEAVY = CostEstimate(fixed_seconds=0.010, seconds_per_token=0.00002)


def fits(estimate: CostEstimate):
    return lambda texts, padded, width: estimate.seconds(padded, width)


def test_the_fit_recovers_fixed_per_token_and_attention_costs():
    cost = BatchCost()
    true = CostEstimate(0.004, 2e-5, 3e-8)
    for size, width in [(1, 8), (8, 8), (32, 8), (1, 32), (8, 32), (32, 32), (1, 128), (8, 128), (32, 128)]:
        cost.observe(size * width, width, true.seconds(size * width, width))
    fitted = cost.estimate()
    assert fitted.fixed_seconds == pytest.approx(0.004, rel=1e-3)
    assert fitted.seconds_per_token == pytest.approx(2e-5, rel=1e-3)
    assert fitted.seconds_per_token_width == pytest.approx(3e-8, rel=1e-3)
    assert fitted.batches == 9


def test_recent_batches_outweigh_old_ones_when_the_cost_changes():
    cost = BatchCost(forgetting=0.9)
    old, new = CostEstimate(0.010, 1e-5), CostEstimate(0.002, 1e-4)
    for estimate in (old, new):
        for _ in range(100):
            for padded in (16, 64, 256):
                cost.observe(padded, 16, estimate.seconds(padded))
    assert cost.estimate().fixed_seconds == pytest.approx(new.fixed_seconds, rel=0.05)
    assert cost.estimate().seconds_per_token == pytest.approx(new.seconds_per_token, rel=0.05)


def test_one_batch_shape_gives_a_usable_positive_estimate_and_none_before_any():
    cost = BatchCost()
    assert cost.estimate() is None
    cost.observe(64, 8, 0.01)
    estimate = cost.estimate()
    assert estimate.fixed_seconds > 0 and estimate.seconds_per_token > 0
    assert estimate.seconds(64, 8) == pytest.approx(0.01)


def test_padding_that_costs_real_work_keeps_a_long_text_out_of_short_ones():
    # the oldest text has 10 tokens; 60 would pad everyone to 60
    picked = best_prefix([10, 10, 10, 60], fits(PER_TOKEN_HEAVY), max_batch_size=8, max_batch_tokens=10_000)
    assert picked == [0, 1, 2]


def test_nearly_free_padding_batches_texts_of_any_length_together():
    picked = best_prefix([10, 11, 12, 60], fits(FIXED_HEAVY), max_batch_size=8, max_batch_tokens=10_000)
    assert picked == [0, 1, 2, 3]


def test_budgets_still_bound_the_batch():
    lengths = [10, 10, 10, 10, 10]
    assert best_prefix(lengths, fits(FIXED_HEAVY), max_batch_size=3, max_batch_tokens=10_000) == [0, 1, 2]
    assert best_prefix(lengths, fits(FIXED_HEAVY), max_batch_size=8, max_batch_tokens=20) == [0, 1]
    # a candidate over the token budget is passed over, the ones after it still considered
    assert best_prefix([10, 30, 10], fits(FIXED_HEAVY), max_batch_size=8, max_batch_tokens=40) == [0, 2]


def test_the_oldest_text_always_runs_even_when_alone_it_is_the_worst_batch():
    assert best_prefix([500], fits(PER_TOKEN_HEAVY), max_batch_size=8, max_batch_tokens=100) == [0]
    assert best_prefix([60, 10, 10, 10], fits(PER_TOKEN_HEAVY), max_batch_size=8, max_batch_tokens=10_000)[0] == 0


def test_a_time_cap_keeps_a_slow_models_batch_within_it():
    """bert-base-like costs (2 ms + 1 ms a token): ten 10-token texts are 102 ms in one batch; capped at
    50 ms the batch stops at four texts (42 ms), and the oldest text runs alone whatever it costs."""
    lengths = [10] * 10
    assert best_prefix(lengths, fits(PER_TOKEN_HEAVY), max_batch_size=32, max_batch_tokens=10_000) == list(range(10))
    assert best_prefix(lengths, fits(PER_TOKEN_HEAVY), max_batch_size=32, max_batch_tokens=10_000,
                       max_seconds=0.050) == [0, 1, 2, 3]
    assert best_prefix([100, 10], fits(PER_TOKEN_HEAVY), max_batch_size=32, max_batch_tokens=10_000,
                       max_seconds=0.050) == [0]


def test_under_a_time_bound_the_batcher_caps_batches_at_half_of_it():
    """A slow model (0.2 s + 0.1 s a token, so a 10-token text is 1.2 s) under max_queue_seconds=10: batches
    of at most 5 s (four texts), where without the bound the same queue runs as one batch of eight."""
    slow = CostEstimate(fixed_seconds=0.2, seconds_per_token=0.1)

    async def scenario(bound):
        model = FakeModel()
        batcher = make(model, max_batch_size=32, max_batch_tokens=10_000, max_queue_size=100,
                       max_queue_seconds=bound, cost=slow)
        await queue_behind_busy_model(batcher, model, [[enc(10)] for _ in range(8)])
        await batcher.drain()
        return batcher.max_batch_seconds, model.batches[1:]

    assert run(scenario(10.0)) == (5.0, [[10] * 4, [10] * 4])
    assert run(scenario(0)) == (None, [[10] * 8])


@pytest.mark.parametrize("cost, expected", [
    (PER_TOKEN_HEAVY, [[10, 10], [40]]),  # the long text waits for a batch of its own
    (FIXED_HEAVY, [[10, 40, 10]]),        # one batch: a second pass would cost more than the padding
])
def test_the_batcher_forms_batches_by_the_cost_it_is_given(cost, expected):
    async def scenario():
        model = FakeModel()
        batcher = make(model, max_batch_size=8, max_batch_tokens=10_000, cost=cost)
        await queue_behind_busy_model(batcher, model, [[enc(n)] for n in (10, 40, 10)])
        await batcher.drain()
        return model.batches[1:]

    assert sorted(map(sorted, run(scenario()))) == sorted(map(sorted, expected))


def test_the_batcher_learns_a_cost_per_engine_from_the_batches_it_runs():
    def key(size: int) -> str:
        return "single" if size == 1 else "batched"

    async def scenario():
        model = FakeModel(key=key)
        batcher = make(model)
        await queue_behind_busy_model(batcher, model, [[enc(7)] for _ in range(3)])
        await batcher.submit([enc(5)])
        await batcher.submit([enc(6), enc(6)])  # one call of two texts: one batch of two
        await batcher.drain()
        return model.batches, batcher.cost_estimates()

    batches, estimates = run(scenario())
    expected = {}
    for batch in batches:
        expected[key(len(batch))] = expected.get(key(len(batch)), 0) + 1
    assert {name: e.batches for name, e in estimates.items()} == expected
    assert set(expected) == {"single", "batched"}
