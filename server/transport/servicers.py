"""The ``sentiment.v1`` servicer: a thin adapter from its messages to the inference core and back."""

from __future__ import annotations

import asyncio
import logging

from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
from server.errors import ServiceError
from server.repository.manager import ModelManager
from server.transport import converters as convert
from server.transport.errors import grpc_code, maps_errors

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SentimentService"].full_name
# Most texts of one PredictStream call in the queue at once; the stream is read no faster.
STREAM_WINDOW = 64


class SentimentServicer(pb_grpc.SentimentServiceServicer):
    """Each method converts the request, awaits the core, converts the answer; ``maps_errors`` turns the
    core's errors into statuses."""

    def __init__(self, models: ModelManager, stream_window: int | None = None):
        self.models = models  # a request's model is one lookup: models.core(name, version)
        self.stream_window = stream_window or STREAM_WINDOW

    @maps_errors
    async def Predict(self, request, context):
        core = self.models.core(request.model_name, request.model_version)
        (prediction,) = await core.predict([request.text], convert.options(request.options),
                                           timeout=context.time_remaining(), pairs=convert.pair(request.text_pair))
        return pb.PredictResponse(prediction=convert.prediction_message(prediction))

    @maps_errors
    async def PredictBatch(self, request, context):
        core = self.models.core(request.model_name, request.model_version)
        predictions = await core.predict(list(request.texts), convert.options(request.options),
                                         timeout=context.time_remaining(), pairs=convert.pairs(request.text_pairs))
        return pb.PredictBatchResponse(predictions=[convert.prediction_message(p) for p in predictions])

    @maps_errors
    async def GetModelInfo(self, request, context):
        return convert.model_info_message(convert.version_info(self.models.version_of(request.model_name,
                                                                                      request.model_version)))

    @maps_errors
    async def ListModels(self, request, context):
        return pb.ListModelsResponse(default_model=self.models.default, models=[
            convert.model_version_message(version, unversioned) for version, unversioned in self.models.listing()])

    @maps_errors
    async def Explain(self, request, context):
        core = self.models.core(request.model_name, request.model_version)
        explanation = await core.explain(request.text, label=request.label or None,
                                         truncation=convert.truncation(request.truncation),
                                         steps=request.steps or None, timeout=context.time_remaining(),
                                         pair=request.text_pair or None)
        return convert.explanation_message(explanation)

    async def PredictStream(self, request_iterator, context):
        """Read requests no faster than ``stream_window`` of them are being served; answer each by id."""
        answers: asyncio.Queue = asyncio.Queue()
        window = asyncio.Semaphore(self.stream_window)
        pending: set[asyncio.Task] = set()

        async def serve_one(request) -> None:
            try:
                core = self.models.core(request.model_name, request.model_version)
                (prediction,) = await core.predict(
                    [request.text], convert.options(request.options), timeout=context.time_remaining(),
                    pairs=convert.pair(request.text_pair),
                )
                answer = pb.StreamPredictResponse(id=request.id, prediction=convert.prediction_message(prediction))
            except ServiceError as error:
                answer = pb.StreamPredictResponse(
                    id=request.id, error=pb.Error(code=grpc_code(error).value[0], message=error.message)
                )
            finally:
                window.release()
            answers.put_nowait(answer)

        async def read_all() -> None:
            try:
                async for request in request_iterator:
                    await window.acquire()
                    task = asyncio.create_task(serve_one(request))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                while pending:
                    await asyncio.gather(*pending)
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read_all())
        try:
            while (answer := await answers.get()) is not None:
                yield answer
            await reader  # surfaces a broken request stream
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()
