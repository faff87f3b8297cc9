"""The service's one retry layer: which failed calls the client library sends again, how often, and after
how long a pause.

Every retry in the project happens here, in the client that the CLI, the bridge's request path and its
file-scoring jobs all use: it sees the caller's deadline and can be told the caller's intent (an
interactive request gives up on overload at once; a background job waits it out), for plain calls,
futures and the asyncio client alike. gRPC's own channel retry policy is not used (it is one policy per
channel, caps attempts at five and cannot tell a job from a request), and the bridge's shared calls do not
retry: a shared call refused for what may be one text's fault is split, each request sent alone once
(``PER_TEXT_CODES``), which is not a retry of the same call.
"""

from __future__ import annotations

from dataclasses import dataclass

# Failures that say something about one text of a call (its own bad input), not about the service: a batch
# refused with one is sent again text by text, so that each text gets the answer it earns alone.
PER_TEXT_CODES = frozenset({"INVALID_ARGUMENT", "OUT_OF_RANGE"})
# Failures of a busy or restarting service, over by the time a pause has passed.
OVERLOAD_CODES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class RetryPolicy:
    """Send a call again when it fails with one of ``codes``, at most ``max_attempts`` times in all (None:
    as long as its deadline allows), pausing ``initial_backoff`` seconds, then ``multiplier`` times longer
    each time up to ``max_backoff``. Every attempt runs within the call's one deadline."""

    codes: frozenset[str] = frozenset({"UNAVAILABLE"})
    max_attempts: int | None = 4
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def pause(self, code: str, attempt: int, remaining: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after attempt ``attempt`` (from 1) failed with
        ``code``; None when the call is not tried again (not retryable, out of attempts or of time)."""
        if code not in self.codes or (self.max_attempts is not None and attempt >= self.max_attempts):
            return None
        pause = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return pause if remaining > pause else None


# A replica restarting or a connection reset: four tries, 0.1-0.4 s apart (every call here is idempotent).
DEFAULT = RetryPolicy()
# wait_for_ready=True: ride through a server restart, trying every 50 ms until the deadline.
UNTIL_DEADLINE = RetryPolicy(max_attempts=None, initial_backoff=0.05, max_backoff=0.05)
# A background job (the bridge's file scoring): wait out overload and restarts with backoff, within its deadline.
WAIT_OUT_OVERLOAD = RetryPolicy(codes=OVERLOAD_CODES, max_attempts=None, initial_backoff=0.2, max_backoff=5.0)
NO_RETRY = RetryPolicy(codes=frozenset())
