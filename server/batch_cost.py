"""What a batch costs, learned from the batches an engine runs, and the batch that costs least per token.

A forward pass costs roughly ``fixed + per_token × padded tokens``: the fixed part is the per-call
work of the engine and of our own code (tiny for bert-base on a CPU, most of a small model's pass),
the per-token part the arithmetic. The batcher fits the two numbers online, per engine, by least
squares over recent batches with exponential forgetting, and then takes, among the batches it could
form around the oldest waiting text, the one that gets the most real tokens done per second. So
padding is avoided where it is real work (bert-base) and accepted where it is nearly free (MiniLM),
with no ratio tuned on one model size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Before any batch has been measured: a fixed cost worth this many padded tokens (a middle ground
# between bert-base on a CPU, ~10, and MiniLM, ~200); replaced as soon as batches of two sizes ran.
PRIOR_FIXED_TOKENS = 64.0


@dataclass(frozen=True)
class CostEstimate:
    """``fixed + per_token × padded + per_token_width × padded × width``: the last term is attention,
    whose work per token grows with the batch's width (so 128-token batches cost more per token than
    16-token ones, and a line through both would guess the fixed part wrong)."""

    fixed_seconds: float
    seconds_per_token: float
    seconds_per_token_width: float = 0.0
    batches: int = 0

    def seconds(self, padded_tokens: int, width: int = 0) -> float:
        return (self.fixed_seconds + self.seconds_per_token * padded_tokens
                + self.seconds_per_token_width * padded_tokens * width)


# in units of one token's work: only the ratios of the parts matter for choosing a batch
PRIOR = CostEstimate(PRIOR_FIXED_TOKENS, 1.0)


class BatchCost:
    """Least squares over the batches run, with exponential forgetting (recent batches count most)."""

    def __init__(self, forgetting: float = 0.98, given: CostEstimate | None = None):
        self.forgetting = forgetting
        self._xtx = np.zeros((3, 3))
        self._xty = np.zeros(3)
        self._weight = 0.0
        self.batches = 0
        self._given = given
        self._fitted: CostEstimate | None = None  # cleared by observe: fitted once per batch, read often

    def observe(self, padded_tokens: int, width: int, seconds: float) -> None:
        if padded_tokens <= 0 or seconds <= 0:
            return
        x = np.array([1.0, padded_tokens, padded_tokens * width])
        self._xtx = self.forgetting * self._xtx + np.outer(x, x)
        self._xty = self.forgetting * self._xty + x * seconds
        self._weight = self.forgetting * self._weight + 1.0
        self.batches += 1
        self._fitted = None

    def estimate(self) -> CostEstimate | None:
        """The fitted costs; None before any batch (unless given). Falls back to fewer terms when the
        batches seen so far cannot tell the parts apart (or give one a negative cost)."""
        if self._given is not None:
            return self._given
        if self.batches == 0:
            return None
        if self._fitted is None:
            self._fitted = self._fit()
        return self._fitted

    def _fit(self) -> CostEstimate:
        for terms in ((0, 1, 2), (0, 1)):
            a, b = self._xtx[np.ix_(terms, terms)], self._xty[list(terms)]
            if np.linalg.cond(a) < 1e12:
                coef = np.linalg.solve(a, b)
                if (coef >= 0).all():
                    return CostEstimate(*map(float, coef), *([0.0] * (3 - len(terms))), batches=self.batches)
        # one batch shape so far, or no usable fit: split the mean cost by the prior
        mean_tokens, mean_seconds = float(self._xtx[0, 1] / self._weight), float(self._xty[0] / self._weight)
        per_token = mean_seconds / (mean_tokens + PRIOR_FIXED_TOKENS)
        return CostEstimate(per_token * PRIOR_FIXED_TOKENS, per_token, batches=self.batches)


def best_prefix(lengths: Sequence[int], seconds: Callable[[int, int, int], float], *, max_batch_size: int,
                max_batch_tokens: int, max_padding_ratio: float | None = None) -> list[int]:
    """Indices (into ``lengths``) of the batch to run. ``lengths[0]`` is the oldest text and always in it;
    the rest are candidates in the order they should be considered (closest in length first).
    ``seconds(texts, padded_tokens, width)`` is the estimated time of a batch.

    Candidates that would break the size or token budget (or the optional padding cap) are passed
    over; among the prefixes of what is left, the one with the most real tokens per estimated second
    wins (the longest on a tie: more callers answered at the same rate)."""
    chosen, width, real = [0], lengths[0], lengths[0]
    best, best_rate = 1, real / seconds(1, width, width)
    for index in range(1, len(lengths)):
        if len(chosen) >= max_batch_size:
            break
        n = lengths[index]
        new_width = max(width, n)
        padded = new_width * (len(chosen) + 1)
        if padded > max_batch_tokens or (max_padding_ratio and padded > max_padding_ratio * (real + n)):
            continue
        chosen.append(index)
        width, real = new_width, real + n
        rate = real / seconds(len(chosen), padded, new_width)
        if rate >= best_rate:
            best, best_rate = len(chosen), rate
    return chosen[:best]
