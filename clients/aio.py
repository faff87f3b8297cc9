"""The asyncio client: the same calls as ``SentimentClient``, awaitable, over one ``grpc.aio`` channel."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.channel import SERVICE, ClientBase
from clients.client import _stream_requests
from clients.errors import SentimentError
from clients.types import (Explanation, ModelInfo, Prediction, PredictOptions, StreamResult, explain_request,
                           options_message, stream_result)
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc


class AsyncSentimentClient(ClientBase):
    """``async with AsyncSentimentClient("localhost:50051") as client: await client.predict("...")``."""

    def __init__(self, target: str | list[str] = "localhost:50051", **options):
        super().__init__(target, **options)
        self._channel = self.config.open(aio=True)
        self._stub = pb_grpc.SentimentServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> "AsyncSentimentClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method, request, timeout: float | None, request_id: str | None = None):
        """As ``SentimentClient._call``: tried again as the retry policy says (``clients.retry``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(request, timeout=max(0.001, deadline - loop.time()),
                                    metadata=self.config.metadata(request_id), wait_for_ready=self.wait_for_ready)
            except grpc.RpcError as error:
                pause = self.retry.pause(error.code().name, attempt, deadline - loop.time())
                if pause is None:
                    raise SentimentError.from_rpc_error(error) from None
                await asyncio.sleep(pause)

    async def predict(self, text: str, *, truncation: str | None = None, return_logits: bool = False,
                      return_windows: bool = False, threshold: float | None = None, options: PredictOptions | None = None,
                      timeout: float | None = None, request_id: str | None = None) -> Prediction:
        message = options_message(options, truncation, return_logits, return_windows, threshold)
        request = pb.PredictRequest(text=text, options=message)
        return Prediction.from_message((await self._call(self._stub.Predict, request, timeout, request_id)).prediction)

    async def predict_batch(self, texts: list[str], *, truncation: str | None = None, return_logits: bool = False,
                            return_windows: bool = False, threshold: float | None = None,
                            options: PredictOptions | None = None, timeout: float | None = None,
                            request_id: str | None = None) -> list[Prediction]:
        message = options_message(options, truncation, return_logits, return_windows, threshold)
        response = await self._call(self._stub.PredictBatch, pb.PredictBatchRequest(texts=texts, options=message),
                                    timeout, request_id)
        return [Prediction.from_message(p) for p in response.predictions]

    async def stream(self, items: Iterable[str | tuple[str, str]] | AsyncIterable[str | tuple[str, str]], *,
                     truncation: str | None = None, return_logits: bool = False, return_windows: bool = False,
                     threshold: float | None = None, options: PredictOptions | None = None,
                     timeout: float | None = None) -> AsyncIterator[StreamResult]:
        options = options_message(options, truncation, return_logits, return_windows, threshold)
        if isinstance(items, AsyncIterable):
            async def requests():
                index = itertools.count()
                async for item in items:
                    item_id, text = item if isinstance(item, tuple) else (str(next(index)), item)
                    yield pb.StreamPredictRequest(id=item_id, text=text, options=options)
            source = requests()
        else:
            source = _stream_requests(items, options)
        try:
            async for message in self._stub.PredictStream(source, timeout=timeout, metadata=self.config.metadata(),
                                                          wait_for_ready=self.wait_for_ready):
                yield stream_result(message)
        except grpc.RpcError as error:
            raise SentimentError.from_rpc_error(error) from None

    async def explain(self, text: str, *, label: str | None = None, truncation: str | None = None,
                      steps: int | None = None, timeout: float | None = None,
                      request_id: str | None = None) -> Explanation:
        request = explain_request(text, label, truncation, steps)
        return Explanation.from_message(await self._call(self._stub.Explain, request, timeout, request_id))

    async def model_info(self, *, timeout: float | None = None) -> ModelInfo:
        return ModelInfo.from_message(await self._call(self._stub.GetModelInfo, pb.GetModelInfoRequest(), timeout))

    async def health(self, service: str = SERVICE, *, timeout: float | None = None) -> str:
        response = await self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
