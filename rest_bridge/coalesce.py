"""Concurrent one-text /predict requests in a bridge worker share PredictBatch calls (group commit).

Every RPC costs a fixed slice of CPU whatever it carries: the bridge's gRPC call (~0.25 ms) and the
server's grpc.aio call (tasks, callbacks, a response: ~0.4 ms). For the built-in model on two cores that
is a sixth of the work per text, so a bridge that sends one RPC per HTTP request carries markedly less
than the gRPC server does. Here at most ``max_in_flight`` calls per worker are out at once: a request
that finds one free leaves at once (a lone caller never waits for company), and the requests that
arrive while all are out leave together in the next call, up to ``max_texts``, as soon as one comes
back. The server's own batcher still forms the model's batches; this only cuts the number of calls that
carry the texts to it. A full call (``max_texts`` requests waiting) leaves at once even while every call
is out: under overload the calls out wait in the server's queue for up to its time bound, and without
this the requests behind them waited too, seconds before even hearing they were refused (4x overload,
1,015 requests/s: accepted p99 5.0 s, refused p99 4.1 s). Closed-loop callers of one worker never fill
a call while two are out, so they keep sharing as before.

Calls are made without blocking (``send`` returns a future) and answered from the call's completion,
so every request waits on its own deadline alone: a request whose deadline passes gets
DEADLINE_EXCEEDED then, whether it was still waiting or in a call, and the call goes on for the others
(it carries the latest deadline among them).

Requests go together only when their options match. A call that fails for a reason that may be one
text's own (``clients.retry.PER_TEXT_CODES``: INVALID_ARGUMENT, say a text over the limit with truncation
"reject") is not blamed on the others: each request of it is sent alone, once, so every caller gets the
answer its own text earns (a split, not a retry: retries are the client's, ``clients.retry``). Every other
failure (overload, the backend's unavailability) applies to every text alike and is answered as it comes. The call carries the first request's id and trace context.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from clients.errors import SentimentError
from clients.retry import PER_TEXT_CODES
from clients.types import PredictOptions
from sentiment.common.tracing import attached, current_context

# send(texts, options, timeout, request_id) -> a future of the texts' predictions, in order
Send = Callable[[list[str], PredictOptions, float, "str | None"], Future]


@dataclass(eq=False)
class _Request:
    text: str
    options: PredictOptions
    deadline: float
    request_id: str | None
    trace_context: Any
    answered: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: SentimentError | None = None
    alone: bool = False  # its call failed in a way that may be another text's fault: send it alone
    sent: bool = False


class Coalescer:
    def __init__(self, send: Send, *, max_texts: int, max_in_flight: int,
                 on_call: Callable[[int], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self._send = send
        self.max_texts = max_texts
        self.max_in_flight = max_in_flight
        self._on_call = on_call
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[_Request] = deque()
        self._in_flight = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a call to leave in."""
        return len(self._pending)

    def predict(self, text: str, options: PredictOptions, timeout: float, request_id: str | None = None):
        """The prediction for one text, or its ``SentimentError`` (requests share a call only when their
        options are equal)."""
        request = _Request(text, options, self._clock() + timeout, request_id, current_context())
        with self._lock:
            self._pending.append(request)
            groups = self._take_groups()
        self._start(groups)
        if not request.answered.wait(max(0.0, request.deadline - self._clock())) and self._give_up(request):
            raise SentimentError("DEADLINE_EXCEEDED", "the deadline passed before the backend answered")
        if request.alone:
            remaining = max(1e-6, request.deadline - self._clock())
            return self._send([text], options, remaining, request_id).result()[0]
        if request.error is not None:
            raise request.error
        return request.result

    def _give_up(self, request: _Request) -> bool:
        """At the request's own deadline: leave the queue (a call already out goes on for the others),
        unless the answer came just now."""
        with self._lock:
            if request.answered.is_set():
                return False
            if not request.sent:
                self._pending.remove(request)
            return True

    def _take_groups(self) -> list[list[_Request]]:
        """With the lock held: the calls that may leave now, each the oldest waiting request and those
        after it with the same options, up to ``max_texts``; past ``max_in_flight`` only full calls."""
        groups = []
        while self._pending and (self._in_flight < self.max_in_flight or len(self._pending) >= self.max_texts):
            first = self._pending.popleft()
            group, kept = [first], deque()
            while self._pending and len(group) < self.max_texts:
                other = self._pending.popleft()
                (group if other.options == first.options else kept).append(other)
            kept.extend(self._pending)
            self._pending = kept
            self._in_flight += 1
            for request in group:
                request.sent = True
            groups.append(group)
        return groups

    def _start(self, groups: list[list[_Request]]) -> None:
        for group in groups:
            first = group[0]
            timeout = max(1e-6, max(r.deadline for r in group) - self._clock())
            if self._on_call:
                self._on_call(len(group))
            try:
                with attached(first.trace_context):
                    call = self._send([r.text for r in group], first.options, timeout, first.request_id)
            except Exception as error:  # noqa: BLE001 - a call that could not even start
                call = Future()
                call.set_exception(error)
            call.add_done_callback(lambda done, group=group: self._finish(group, done))

    def _finish(self, group: list[_Request], call: Future) -> None:
        """The call's completion (on the thread that completed it): answer its requests, start what waits."""
        try:
            for request, prediction in zip(group, call.result(), strict=True):
                request.result = prediction
        except SentimentError as error:
            for request in group:
                if len(group) > 1 and error.code in PER_TEXT_CODES:
                    request.alone = True
                else:
                    request.error = error
        except Exception as error:  # noqa: BLE001 - every waiting caller must hear of it
            failure = SentimentError("INTERNAL", f"the call to the backend failed: {error}")
            for request in group:
                request.error = failure
        with self._lock:
            self._in_flight -= 1
            for request in group:
                request.answered.set()
            groups = self._take_groups()
        self._start(groups)
