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


def prior(fixed_tokens: float) -> CostEstimate:
    """The estimate before any batch ran (``BatchPolicy.prior_fixed_tokens``), in units of one token's work:
    only the ratios of the parts matter for choosing a batch."""
    return CostEstimate(fixed_tokens, 1.0)


class BatchCost:
    """Least squares over the batches run, with exponential forgetting (recent batches count most).

    Plain Python on purpose: it runs on the event loop after every batch, and the 3x3 normal equations
    solved by hand cost a few microseconds where numpy's solve and condition number cost ~100."""

    def __init__(self, forgetting: float = 0.98, given: CostEstimate | None = None, prior_fixed_tokens: float = 64.0):
        self.forgetting = forgetting
        self.prior_fixed_tokens = prior_fixed_tokens
        self._xtx = [[0.0] * 3 for _ in range(3)]
        self._xty = [0.0] * 3
        self._weight = 0.0
        self.batches = 0
        self._given = given
        self._fitted: CostEstimate | None = None  # cleared by observe: fitted at most once per batch

    def observe(self, padded_tokens: int, width: int, seconds: float) -> None:
        if padded_tokens <= 0 or seconds <= 0:
            return
        f = self.forgetting
        x = (1.0, float(padded_tokens), float(padded_tokens) * width)
        for i in range(3):
            row = self._xtx[i]
            for j in range(3):
                row[j] = f * row[j] + x[i] * x[j]
            self._xty[i] = f * self._xty[i] + x[i] * seconds
        self._weight = f * self._weight + 1.0
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
            coef = _solve([[self._xtx[i][j] for j in terms] for i in terms], [self._xty[i] for i in terms])
            if coef is not None and all(c >= 0 for c in coef):
                return CostEstimate(*coef, *([0.0] * (3 - len(terms))), batches=self.batches)
        # one batch shape so far, or no usable fit: split the mean cost by the prior
        mean_tokens, mean_seconds = self._xtx[0][1] / self._weight, self._xty[0] / self._weight
        per_token = mean_seconds / (mean_tokens + self.prior_fixed_tokens)
        return CostEstimate(per_token * self.prior_fixed_tokens, per_token, batches=self.batches)


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Gaussian elimination with partial pivoting on a small system; None when it is (nearly) singular."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    scale = max(abs(v) for row in a for v in row) or 1.0
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12 * scale:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= factor * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def best_prefix(lengths: Sequence[int], seconds: Callable[[int, int, int], float], *, max_batch_size: int,
                max_batch_tokens: int, max_seconds: float | None = None) -> list[int]:
    """Indices (into ``lengths``) of the batch to run. ``lengths[0]`` is the oldest text and always in it;
    the rest are candidates in the order they should be considered (closest in length first).
    ``seconds(texts, padded_tokens, width)`` is the estimated time of a batch.

    Candidates that would break the size or token budget are passed over; among the prefixes of what is left, the one with the most real tokens per estimated second
    wins (the longest on a tie: more callers answered at the same rate). ``max_seconds`` caps the
    batch's estimated time (the oldest text runs whatever its cost): a batch is time every text in it
    and behind it waits, so under a latency bound a slow model runs smaller batches."""
    chosen, width, real = [0], lengths[0], lengths[0]
    best, best_rate = 1, real / seconds(1, width, width)
    for index in range(1, len(lengths)):
        if len(chosen) >= max_batch_size:
            break
        n = lengths[index]
        new_width = max(width, n)
        padded = new_width * (len(chosen) + 1)
        if padded > max_batch_tokens:
            continue
        estimate = seconds(len(chosen) + 1, padded, new_width)
        if max_seconds is not None and estimate > max_seconds:
            continue
        chosen.append(index)
        width, real = new_width, real + n
        rate = real / estimate
        if rate >= best_rate:
            best, best_rate = len(chosen), rate
    return chosen[:best]
