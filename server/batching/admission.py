"""Admission by time: how long a call would wait, priced before it is queued.

A call is refused at once (RESOURCE_EXHAUSTED) when the work ahead of it, plus its own first batch at the
learned cost, is over the bound. The work ahead is whichever is more of: the real tokens queued (and what
is left of the running batch) at the rate recent backlogs drained, and the time the oldest queued text has
already waited (it catches what the prediction misses: a slower model under load, texts overtaken by
shorter ones). Recent batches' average time instead of the learned cost refused many calls at 64
closed-loop callers (docs/performance.md).
"""

from __future__ import annotations


class DrainRate:
    """How fast a backlog drains: real tokens per second, and seconds per batch, smoothed over recent
    batches that ran with work waiting (EWMA). A lone text with nothing queued behind it is not counted:
    it runs far below the rate at which a backlog drains, and would make the estimate pessimistic.

    (Estimating the queue by its texts as well, at the texts per batch seen, refused many more calls at
    64 closed-loop callers for no gain under 4x overload: recent batches are smaller than the ones a long
    queue forms.)"""

    def __init__(self, smoothing: float):
        self.smoothing = smoothing
        self.batches = 0
        self.tokens_per_batch = self.seconds_per_batch = 0.0

    def observe(self, tokens: int, seconds: float) -> None:
        if seconds <= 0 or tokens <= 0:
            return
        a = 1.0 if self.batches == 0 else self.smoothing
        self.tokens_per_batch += a * (tokens - self.tokens_per_batch)
        self.seconds_per_batch += a * (seconds - self.seconds_per_batch)
        self.batches += 1

    @property
    def tokens_per_second(self) -> float | None:
        return self.tokens_per_batch / self.seconds_per_batch if self.batches else None

    def seconds_for(self, tokens: int) -> float:
        """Estimated time to run ``tokens`` real tokens; 0 until measured."""
        return self.seconds_per_batch * tokens / self.tokens_per_batch if self.batches else 0.0


def wait_estimate(queued_seconds: float, oldest_waited: float, own_seconds: float) -> float:
    """What a call would wait: the work ahead (predicted, or observed from the oldest text, whichever is more)
    plus its own first batch."""
    return max(queued_seconds, oldest_waited) + own_seconds
