"""What every route of the bridge shares to reach the gRPC server: one client (one channel per worker), the
in-flight gate, the coalescer of one-text requests, each request's id and deadline, and the upstream
metrics. The API, OIP and jobs blueprints take it; none of them builds its own."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future

from flask import Response, jsonify, request

from clients.client import SentimentClient
from clients.errors import SentimentError
from clients.types import PredictOptions, Prediction
from rest_bridge.coalesce import Coalescer
from rest_bridge.errors import error_response
from rest_bridge.metrics import BridgeMetrics
from rest_bridge.settings import BridgePolicy, BridgeSettings
from sentiment.common.tracing import server_span


class Backend:
    def __init__(self, settings: BridgeSettings, policy: BridgePolicy, client: SentimentClient | None = None):
        self.settings, self.policy = settings, policy
        self.client = client or SentimentClient(timeout=settings.timeout_seconds, config=settings.channel_config(policy))
        self.metrics = BridgeMetrics()
        # Requests past this many in flight are refused at once: a bridge thread waiting on a full backend is
        # a queue nobody bounds, and callers would wait instead of backing off. Jobs take their slots here too.
        self.in_flight = threading.BoundedSemaphore(settings.max_concurrent_requests)
        self.coalescer = Coalescer(self._send, max_texts=policy.shared_call_texts, max_in_flight=settings.coalesce_calls,
                                   on_call=self.metrics.shared_call_texts.observe,
                                   clock=lambda: time.monotonic()) if settings.coalesce_calls else None
        self._oip = None

    @property
    def oip(self):
        """The Open Inference Protocol client over the same channel (imported only where OIP is used)."""
        if self._oip is None:
            from clients.oip import InferenceClient

            self._oip = InferenceClient(self.client)
        return self._oip

    def close(self) -> None:
        self.client.close()

    # -- each request's id and deadline -----------------------------------------------------------------

    @staticmethod
    def request_id(given: str | None = None) -> str:
        """The caller's ``X-Request-Id``, else ``given`` (an id the body names, as vLLM's ``request_id``), else a
        new one; the same for the whole request (echoed back)."""
        rid = request.environ.get("sentiment.request_id")
        if rid is None:
            rid = request.environ["sentiment.request_id"] = (request.headers.get("X-Request-Id") or given
                                                             or uuid.uuid4().hex)
        return rid

    def remaining_seconds(self, budget: float | None = None) -> float:
        """What is left of this request's own timeout: the bridge's setting (or ``budget``, for calls that take
        longer, a model's load), or less when the caller sends ``X-Request-Timeout`` (seconds), minus the time
        spent so far; ``SentimentError`` DEADLINE_EXCEEDED (504) when nothing is left."""
        budget = budget or self.settings.timeout_seconds
        asked = request.headers.get("X-Request-Timeout")
        if asked:
            try:
                budget = min(budget, max(0.0, float(asked)))
            except ValueError:
                pass
        left = budget - (time.monotonic() - request.environ["sentiment.started"])
        if left <= 0:  # spent already: no call is made (a fast backend could still answer within a tiny deadline)
            raise SentimentError("DEADLINE_EXCEEDED", f"the request's {budget:g}s timeout passed before the call")
        return left

    # -- calls -------------------------------------------------------------------------------------------

    def admit(self) -> Response | None:
        """None when the request may call the backend (it then holds a slot: ``release`` it); else the 429."""
        if self.in_flight.acquire(blocking=False):
            return None
        return error_response(429, "RESOURCE_EXHAUSTED", f"the bridge has {self.settings.max_concurrent_requests} "
                              "requests in flight, its limit; retry later")

    def release(self) -> None:
        self.in_flight.release()

    def call(self, route: str, fn):
        """``fn()``'s answer as JSON, made within the in-flight limit (429 at once past it), under a span."""
        refused = self.admit()
        if refused is not None:
            return refused
        try:
            with server_span(f"{request.method} {route}", {"http.route": route, "request_id": self.request_id()}):
                body = fn()
        finally:
            self.release()
        self.counted("OK")
        return body if isinstance(body, Response) else jsonify(body)

    def counted(self, code: str) -> None:
        self.metrics.upstream.labels(code).inc()

    def failed(self, error: SentimentError) -> None:
        self.counted(error.code)

    def predict_one(self, text: str, options: PredictOptions, text_pair: str | None = None) -> Prediction:
        """One text: shared with concurrent one-text requests when sharing is on, else a Predict of its own (a text
        with a pair always: the shared calls carry texts alone)."""
        if text_pair is not None:
            return self.client.predict(text, text_pair=text_pair, options=options, timeout=self.remaining_seconds(),
                                       request_id=self.request_id())
        if self.coalescer:
            return self.coalescer.predict(text, options, self.remaining_seconds(), self.request_id())
        return self.client.predict(text, options=options, timeout=self.remaining_seconds(), request_id=self.request_id())

    def predict_many(self, texts: list[str], options: PredictOptions,
                     text_pairs: list[str] | None = None) -> list[Prediction]:
        return self.client.predict_batch(texts, text_pairs=text_pairs, options=options,
                                         timeout=self.remaining_seconds(), request_id=self.request_id())

    def _send(self, texts: list[str], options: PredictOptions, timeout: float, rid: str | None) -> Future:
        """The coalescer's call: alone, it stays the Predict it would have been (same RPC, trace, metrics)."""
        if len(texts) == 1:
            one: Future = Future()
            call = self.client.predict_future(texts[0], options=options, timeout=timeout, request_id=rid)
            call.add_done_callback(lambda done: one.set_exception(done.exception()) if done.exception()
                                   else one.set_result([done.result()]))
            return one
        return self.client.predict_batch_future(texts, options=options, timeout=timeout, request_id=rid)
