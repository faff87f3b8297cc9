"""The asyncio client: the same calls as ``SentimentClient``, awaitable, over one ``grpc.aio`` channel."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.channel import SERVICE, ClientBase
from clients.client import _stream_requests, stream_request
from clients.errors import SentimentError
from clients.types import (Explanation, ModelInfo, ModelVersion, Prediction, PredictOptions, StreamResult,
                           call_options, explain_request, stream_result, text_pairs_field)
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
                      return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                      model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                      text_pair: str | None = None,
                      options: PredictOptions | None = None,
                      timeout: float | None = None, request_id: str | None = None) -> Prediction:
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictRequest(text=text, text_pair=text_pair or "", options=chosen.message(), **chosen.target())
        return Prediction.from_message((await self._call(self._stub.Predict, request, timeout, request_id)).prediction)

    async def predict_batch(self, texts: list[str], *, truncation: str | None = None, return_logits: bool = False,
                            return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                            model_version: str | None = None, top_k: int | None = None, raw_scores: bool = False,
                            text_pairs: list[str | None] | None = None,
                            options: PredictOptions | None = None,
                            timeout: float | None = None, request_id: str | None = None) -> list[Prediction]:
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        request = pb.PredictBatchRequest(texts=texts, text_pairs=text_pairs_field(text_pairs), options=chosen.message(),
                                         **chosen.target())
        response = await self._call(self._stub.PredictBatch, request, timeout, request_id)
        return [Prediction.from_message(p) for p in response.predictions]

    async def stream(self, items: Iterable[str | tuple[str, ...]] | AsyncIterable[str | tuple[str, ...]], *,
                     truncation: str | None = None, return_logits: bool = False, return_windows: bool = False,
                     threshold: float | None = None, model: str | None = None, model_version: str | None = None,
                     top_k: int | None = None, raw_scores: bool = False, options: PredictOptions | None = None,
                     timeout: float | None = None) -> AsyncIterator[StreamResult]:
        chosen = call_options(options, truncation, return_logits, return_windows, threshold, model, model_version,
                              top_k, raw_scores)
        if isinstance(items, AsyncIterable):
            message, target = chosen.message(), chosen.target()

            async def requests():
                index = itertools.count()
                async for item in items:
                    yield stream_request(next(index), item, message, target)
            source = requests()
        else:
            source = _stream_requests(items, chosen)
        try:
            async for message in self._stub.PredictStream(source, timeout=timeout, metadata=self.config.metadata(),
                                                          wait_for_ready=self.wait_for_ready):
                yield stream_result(message)
        except grpc.RpcError as error:
            raise SentimentError.from_rpc_error(error) from None

    async def explain(self, text: str, *, label: str | None = None, truncation: str | None = None,
                      steps: int | None = None, model: str | None = None, model_version: str | None = None,
                      text_pair: str | None = None, timeout: float | None = None,
                      request_id: str | None = None) -> Explanation:
        request = explain_request(text, label, truncation, steps, model, model_version, text_pair)
        return Explanation.from_message(await self._call(self._stub.Explain, request, timeout, request_id))

    async def model_info(self, *, model: str | None = None, model_version: str | None = None,
                         timeout: float | None = None) -> ModelInfo:
        request = pb.GetModelInfoRequest(model_name=model or "", model_version=model_version or "")
        return ModelInfo.from_message(await self._call(self._stub.GetModelInfo, request, timeout))

    async def list_models(self, *, timeout: float | None = None) -> list[ModelVersion]:
        response = await self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return [ModelVersion.from_message(m) for m in response.models]

    async def health(self, service: str = SERVICE, *, timeout: float | None = None) -> str:
        response = await self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
