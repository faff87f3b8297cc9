"""The ``sentiment.v1`` servicer: a thin adapter from its messages to the inference core and back."""

from __future__ import annotations

import asyncio
import logging

from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
from server.core import inference as core_types
from server.core.inference import InferenceCore
from server.errors import ServiceError
from server.transport.errors import abort_with, grpc_code

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SentimentService"].full_name


TRUNCATION_NAMES = {pb.TRUNCATION_UNSPECIFIED: None, pb.TRUNCATION_TRUNCATE: "truncate",
                    pb.TRUNCATION_REJECT: "reject", pb.TRUNCATION_CHUNK: "chunk"}


DEFAULT_OPTIONS = core_types.PredictOptions()


def to_options(message: pb.PredictOptions) -> core_types.PredictOptions:
    if message.ByteSize() == 0:  # nothing set, as in most calls
        return DEFAULT_OPTIONS
    return core_types.PredictOptions(
        truncation=TRUNCATION_NAMES.get(message.truncation, "unknown"), return_logits=message.return_logits,
        return_windows=message.return_windows,
        threshold=message.threshold if message.HasField("threshold") else core_types.PredictOptions.threshold,
    )


def to_message(prediction: core_types.Prediction) -> pb.Prediction:
    message = pb.Prediction(
        label=prediction.label,
        class_id=prediction.class_id,
        scores=[pb.LabelScore(label=k, probability=v) for k, v in prediction.scores.items()],
        num_tokens=prediction.num_tokens,
        truncated=prediction.truncated,
        score=prediction.score,
    )
    # the rest only when present: every field given to the constructor costs, set or empty
    if prediction.logits:
        message.logits.extend(prediction.logits)
    if prediction.predicted_labels:
        message.predicted_labels.extend(prediction.predicted_labels)
    if prediction.windows:
        message.windows = prediction.windows
    if prediction.window_predictions:
        message.window_predictions.extend(
            pb.WindowPrediction(start=w.start, end=w.end, prediction=to_message(w.prediction))
            for w in prediction.window_predictions)
    return message


def explanation_message(explanation: core_types.Explanation) -> pb.ExplainResponse:
    return pb.ExplainResponse(
        prediction=to_message(explanation.prediction), target=explanation.target,
        words=[pb.WordAttribution(word=w.word, start=w.start, end=w.end, attribution=w.attribution)
               for w in explanation.words],
        convergence_delta=explanation.convergence_delta, steps=explanation.steps,
    )


class SentimentServicer(pb_grpc.SentimentServiceServicer):
    def __init__(self, core: InferenceCore, stream_window: int):
        self.core = core
        self.stream_window = stream_window

    async def _predict(self, texts, options, context) -> list[core_types.Prediction]:
        try:
            return await self.core.predict(list(texts), to_options(options), timeout=context.time_remaining())
        except ServiceError as error:
            await abort_with(context, error)

    async def Predict(self, request, context):
        (prediction,) = await self._predict([request.text], request.options, context)
        return pb.PredictResponse(prediction=to_message(prediction))

    async def PredictBatch(self, request, context):
        predictions = await self._predict(request.texts, request.options, context)
        return pb.PredictBatchResponse(predictions=[to_message(p) for p in predictions])

    async def GetModelInfo(self, request, context):
        info = self.core.model_info()
        return pb.ModelInfo(
            model_name=info.model_name, model_source=info.model_source, weights_sha256=info.weights_sha256,
            labels=info.labels, max_input_tokens=info.max_input_tokens, device=info.device, dtype=info.dtype,
            batching=pb.BatchingInfo(
                max_batch_size=info.max_batch_size, max_batch_tokens=info.max_batch_tokens,
                max_queue_size=info.max_queue_size, max_queue_seconds=info.max_queue_seconds,
                costs=[pb.BatchCost(engine=name, fixed_seconds=c.fixed_seconds, seconds_per_token=c.seconds_per_token,
                                    seconds_per_token_width=c.seconds_per_token_width, batches=c.batches)
                       for name, c in info.batch_costs.items()],
            ),
            server_version=info.server_version, max_batch_texts=info.max_batch_texts,
            max_text_chars=info.max_text_chars, engine=info.engine, problem_type=info.problem_type,
            long_text=pb.LongTextInfo(default_mode=info.long_text, window_tokens=info.window_tokens,
                                      overlap_tokens=info.overlap_tokens, max_windows=info.max_windows),
            explain=pb.ExplainInfo(max_concurrent=info.max_concurrent_explanations, default_steps=info.explain_steps,
                                   max_steps=info.max_explain_steps),
            recheck=pb.RecheckInfo(margin=info.recheck.margin, engine=info.recheck.engine, texts=info.recheck.texts,
                                   rechecked=info.recheck.rechecked) if info.recheck else None,
        )

    async def Explain(self, request, context):
        try:
            explanation = await self.core.explain(
                request.text, label=request.label or None,
                truncation=TRUNCATION_NAMES.get(request.truncation, "unknown"), steps=request.steps or None,
                timeout=context.time_remaining())
        except ServiceError as error:
            await abort_with(context, error)
        return explanation_message(explanation)

    async def PredictStream(self, request_iterator, context):
        """Read requests no faster than ``stream_window`` of them are being served; answer each by id."""
        answers: asyncio.Queue = asyncio.Queue()
        window = asyncio.Semaphore(self.stream_window)
        pending: set[asyncio.Task] = set()

        async def serve_one(request) -> None:
            try:
                (prediction,) = await self.core.predict(
                    [request.text], to_options(request.options), timeout=context.time_remaining()
                )
                answer = pb.StreamPredictResponse(id=request.id, prediction=to_message(prediction))
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
