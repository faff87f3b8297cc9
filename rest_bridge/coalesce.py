"""Concurrent one-text /predict requests in a bridge worker share PredictBatch calls (group commit).

Every RPC costs a fixed slice of CPU whatever it carries: the bridge's sync gRPC call (~0.25 ms) and the
server's grpc.aio call (tasks, callbacks, a response: ~0.4 ms). For the built-in model on two cores that
is a sixth of the work per text, so a bridge that sends one RPC per HTTP request carries markedly less
than the gRPC server does. Here at most ``max_in_flight`` calls per worker are out at once: a request
that finds one free leaves at once (a lone caller never waits for company), and the requests that
arrive while all are out wait and leave together in the next call, up to ``max_texts``, as soon as one
comes back. The server's own batcher still forms the model's batches; this only cuts the number of
calls that carry the texts to it.

Requests go together only when their options match. A call that fails for a reason that may be one
text's own (INVALID_ARGUMENT, say a text over the limit with truncation "reject") is not blamed on the
others: each request of it is sent again alone, so every caller gets the answer its own text earns.
Overload (RESOURCE_EXHAUSTED) and the backend's unavailability apply to every text alike and are
answered as they come. The group's call carries the first request's id and trace context, and the
latest deadline of its requests; each request still ends at its own deadline.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from clients.errors import SentimentError
from clients.types import Prediction

# Codes that say nothing about one text in particular: every request of the call gets them as they are.
SHARED_FAILURES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED",
                             "UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION"})


@dataclass(eq=False)
class _Request:
    text: str
    options: tuple
    deadline: float
    request_id: str | None
    ready: threading.Event = field(default_factory=threading.Event)
    lead: list[_Request] | None = None  # set when this request's thread is to send a group
    result: Prediction | None = None
    error: SentimentError | None = None
    alone: bool = False  # its group failed in a way that may be another text's fault: send it alone
    done: bool = False


class Coalescer:
    """``send(texts, options, timeout, request_id)`` makes one PredictBatch call and returns its
    predictions in order; ``options`` is a hashable tuple of keyword arguments for it."""

    def __init__(self, send: Callable[..., list[Prediction]], *, max_texts: int, max_in_flight: int,
                 on_call: Callable[[int], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self._send = send
        self._clock = clock
        self.max_texts = max_texts
        self.max_in_flight = max_in_flight
        self._on_call = on_call
        self._lock = threading.Lock()
        self._pending: deque[_Request] = deque()
        self._in_flight = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a call to leave in."""
        return len(self._pending)

    def predict(self, text: str, options: tuple, timeout: float, request_id: str | None = None) -> Prediction:
        request = _Request(text, options, self._clock() + timeout, request_id)
        with self._lock:
            self._pending.append(request)
            self._start_groups()
        while True:
            if request.lead is None and not request.done:
                if not request.ready.wait(max(0.0, request.deadline - self._clock())) and self._give_up(request):
                    raise SentimentError("DEADLINE_EXCEEDED", "the deadline passed before the backend answered")
            if request.lead is not None:  # this thread sends a group (its own request first in it)
                group, request.lead = request.lead, None
                request.ready.clear()
                self._run(group)
                continue
            if not request.done:
                continue
            if request.alone:
                return self._send([text], options, max(1e-6, request.deadline - self._clock()), request_id)[0]
            if request.error is not None:
                raise request.error
            return request.result

    def _give_up(self, request: _Request) -> bool:
        """At the request's own deadline: leave the queue (or leave the call in flight to the others),
        unless it has just been handed a group to send or its answer has just come."""
        with self._lock:
            if request.lead is not None or request.done:
                return False
            if request in self._pending:
                self._pending.remove(request)
            return True

    def _start_groups(self) -> None:
        """With the lock held: while a call may go out and requests wait, make the next group and wake its
        first request's thread to send it (a thread sends its own group, so no thread is added)."""
        while self._pending and self._in_flight < self.max_in_flight:
            first = self._pending.popleft()
            group = [first]
            kept = deque()
            while self._pending and len(group) < self.max_texts:
                other = self._pending.popleft()
                (group if other.options == first.options else kept).append(other)
            kept.extend(self._pending)
            self._pending = kept
            self._in_flight += 1
            first.lead = group
            first.ready.set()

    def _run(self, group: list[_Request]) -> None:
        first = group[0]
        timeout = max(1e-6, max(r.deadline for r in group) - self._clock())
        try:
            if self._on_call:
                self._on_call(len(group))
            predictions = self._send([r.text for r in group], first.options, timeout, first.request_id)
            for request, prediction in zip(group, predictions):
                request.result = prediction
        except SentimentError as error:
            for request in group:
                if len(group) > 1 and error.code not in SHARED_FAILURES:
                    request.alone = True
                else:
                    request.error = error
        except Exception as error:  # noqa: BLE001 - every waiting caller must hear of it
            failure = SentimentError("INTERNAL", f"the call to the backend failed: {error}")
            for request in group:
                request.error = failure
        finally:
            with self._lock:
                self._in_flight -= 1
                for request in group:
                    request.done = True
                    request.ready.set()
                self._start_groups()
