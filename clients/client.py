"""The synchronous client: one channel, a deadline on every call, ``SentimentError`` on failure."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import retry
from clients.channel import SERVICE, ClientBase
from clients.errors import SentimentError
from clients.types import (Explanation, ModelInfo, ModelVersion, Prediction, PredictOptions, StreamResult,
                           call_options, explain_request, stream_result, text_pairs_field)
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc





def stream_request(index: int, item: str | tuple[str, ...], message: pb.PredictOptions,
                   target: dict) -> pb.StreamPredictRequest:
    """One stream item: a text (id "<index>"), (id, text), or (id, text, text_pair) with a second segment."""
    if not isinstance(item, tuple):
        return pb.StreamPredictRequest(id=str(index), text=item, options=message, **target)
    item_id, text, *pair = item
    return pb.StreamPredictRequest(id=item_id, text=text, text_pair=(pair[0] or "") if pair else "", options=message,
                                   **target)


def _stream_requests(items: Iterable[str | tuple[str, ...]], options: PredictOptions):
    """Texts get ids "0", "1", ...; (id, text) items keep their ids, (id, text, text_pair) items carry a pair."""
    message, target = options.message(), options.target()
    for index, item in zip(itertools.count(), items):
        yield stream_request(index, item, message, target)


class SentimentClient(ClientBase):
    """``with SentimentClient("localhost:50051") as client: client.predict("I love this")``."""

    def __init__(self, target: str | list[str] = "localhost:50051", **options):
        super().__init__(target, **options)
        self._channel = self.config.open()
        self._stub = pb_grpc.SentimentServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> "SentimentClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request, timeout: float | None, request_id: str | None = None,
              wait_for_ready: bool | None = None):
        """One unary call with a deadline, tried again as the retry policy says (``clients.retry``); every
        call here is idempotent."""
        wait = self.wait_for_ready if wait_for_ready is None else wait_for_ready
        policy = retry.UNTIL_DEADLINE if wait and not self.wait_for_ready else self.retry
        deadline = time.monotonic() + (timeout or self.timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(request, timeout=max(0.001, deadline - time.monotonic()),
                              metadata=self.config.metadata(request_id), wait_for_ready=wait)
            except grpc.RpcError as error:
                pause = policy.pause(error.code().name, attempt, deadline - time.monotonic())
                if pause is None:
                    raise SentimentError.from_rpc_error(error) from None
                time.sleep(pause)

    # Every predict method takes the options as keyword arguments or, from a caller that holds them, as a
    # PredictOptions (``options=``): truncation "truncate", "reject", "chunk" (read it whole in windows) or None
    # (the server's default); return_windows: with "chunk", each window's prediction too; threshold: multi-label
    # models predict every label at or above it (server default 0.5); model and model_version: which of the
    # server's models answers (None: its default model, in the version the model's policy serves); top_k: also
    # the best k labels, best first (Prediction.top; None: none); raw_scores: scores carry the logits (TEI's).

    def predict(self, text: str, *, truncation: str | None = None, return_logits: bool = False,
                return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                text_pair: str | None = None,
                options: PredictOptions | None = None,
                timeout: float | None = None, request_id: str | None = None) -> Prediction:
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictRequest(text=text, text_pair=text_pair or "", options=chosen.message(), **chosen.target())
        return Prediction.from_message(self._call(self._stub.Predict, request, timeout, request_id).prediction)

    def predict_batch(self, texts: list[str], *, truncation: str | None = None, return_logits: bool = False,
                      return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                      model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                      text_pairs: list[str | None] | None = None,
                      options: PredictOptions | None = None,
                      timeout: float | None = None, request_id: str | None = None) -> list[Prediction]:
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictBatchRequest(texts=texts, text_pairs=text_pairs_field(text_pairs), options=chosen.message(),
                                         **chosen.target())
        response = self._call(self._stub.PredictBatch, request, timeout, request_id)
        return [Prediction.from_message(p) for p in response.predictions]

    def predict_future(self, text: str, *, truncation: str | None = None, return_logits: bool = False,
                       return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                       model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                       text_pair: str | None = None,
                       options: PredictOptions | None = None,
                       timeout: float | None = None, request_id: str | None = None) -> Future[Prediction]:
        """``predict`` without waiting: a ``concurrent.futures.Future`` of the prediction, or of the
        ``SentimentError``; retried as any call (on a timer thread, never blocking the caller)."""
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictRequest(text=text, text_pair=text_pair or "", options=chosen.message(), **chosen.target())
        return self._future(self._stub.Predict, request, timeout, request_id,
                            lambda response: Prediction.from_message(response.prediction))

    def predict_batch_future(self, texts: list[str], *, truncation: str | None = None, return_logits: bool = False,
                             return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                             model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                             text_pairs: list[str | None] | None = None,
                             options: PredictOptions | None = None,
                             timeout: float | None = None, request_id: str | None = None) -> Future[list[Prediction]]:
        """``predict_batch`` without waiting, as ``predict_future``."""
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictBatchRequest(texts=texts, text_pairs=text_pairs_field(text_pairs), options=chosen.message(),
                                         **chosen.target())
        return self._future(self._stub.PredictBatch, request, timeout, request_id,
                            lambda response: [Prediction.from_message(p) for p in response.predictions])

    def _future(self, method, request, timeout: float | None, request_id: str | None, convert: Callable) -> Future:
        result: Future = Future()
        deadline = time.monotonic() + (timeout or self.timeout)
        metadata = self.config.metadata(request_id)  # made on the caller's thread: its trace context

        def attempt(number: int) -> None:
            call = method.future(request, timeout=max(0.001, deadline - time.monotonic()), metadata=metadata,
                                 wait_for_ready=self.wait_for_ready)
            call.add_done_callback(lambda done: finished(done, number))

        def finished(call, number: int) -> None:
            try:
                result.set_result(convert(call.result()))
            except grpc.RpcError as error:
                pause = self.retry.pause(error.code().name, number, deadline - time.monotonic())
                if pause is None:
                    result.set_exception(SentimentError.from_rpc_error(error))
                else:
                    timer = threading.Timer(pause, attempt, (number + 1,))
                    timer.daemon = True
                    timer.start()
            except Exception as error:  # noqa: BLE001 - a cancelled call, a message that did not convert
                result.set_exception(error)

        attempt(1)
        return result

    def stream(self, items: Iterable[str | tuple[str, ...]], *, truncation: str | None = None,
               return_logits: bool = False, return_windows: bool = False, threshold: float | None = None,
               model: str | None = None, model_version: str | None = None, top_k: int | None = None,
               raw_scores: bool = False, options: PredictOptions | None = None,
               timeout: float | None = None) -> Iterator[StreamResult]:
        """Send texts (or (id, text) items, or (id, text, text_pair) items) on one stream; yields results as they finish. ``timeout``
        bounds the whole stream (default: none, since a stream may run for long)."""
        requests = _stream_requests(items, call_options(options, truncation, return_logits, return_windows, threshold,
                                                        model, model_version, top_k, raw_scores))
        try:
            for message in self._stub.PredictStream(requests, timeout=timeout, metadata=self.config.metadata(),
                                                    wait_for_ready=self.wait_for_ready):
                yield stream_result(message)
        except grpc.RpcError as error:
            raise SentimentError.from_rpc_error(error) from None

    def explain(self, text: str, *, label: str | None = None, truncation: str | None = None,
                steps: int | None = None, model: str | None = None, model_version: str | None = None,
                text_pair: str | None = None, timeout: float | None = None,
                request_id: str | None = None) -> Explanation:
        """Each word's attribution to ``label`` (default: the predicted one), with character offsets."""
        request = explain_request(text, label, truncation, steps, model, model_version, text_pair)
        return Explanation.from_message(self._call(self._stub.Explain, request, timeout, request_id))

    def model_info(self, *, model: str | None = None, model_version: str | None = None,
                   timeout: float | None = None) -> ModelInfo:
        """A model's facts (None: the default model), in the version its unversioned requests get."""
        request = pb.GetModelInfoRequest(model_name=model or "", model_version=model_version or "")
        return ModelInfo.from_message(self._call(self._stub.GetModelInfo, request, timeout))

    def list_models(self, *, timeout: float | None = None) -> list[ModelVersion]:
        """Every model version the server has loaded, the default model's first."""
        response = self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [ModelVersion.from_message(m) for m in response.models]

    def health(self, service: str = SERVICE, *, timeout: float | None = None, wait_for_ready: bool = False) -> str:
        """The standard health check's status name: ``SERVING``, ``NOT_SERVING``, ..."""
        response = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout,
                              wait_for_ready=wait_for_ready)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        """Block until the server reports SERVING (it says NOT_SERVING while it warms up)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if self.health(timeout=max(0.1, min(remaining, 5.0)), wait_for_ready=True) == "SERVING":
                    return
            except SentimentError as error:
                if error.code not in ("UNAVAILABLE", "DEADLINE_EXCEEDED") or remaining <= 0:
                    raise
            if remaining <= 0:
                raise SentimentError("DEADLINE_EXCEEDED", f"the server was not SERVING within {timeout}s")
            time.sleep(0.05)
