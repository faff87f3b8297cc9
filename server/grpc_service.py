"""The gRPC front end: a thin adapter from ``sentiment.v1`` messages to the inference core, and the server
that also mounts health, reflection and the Open Inference Protocol (``server/oip_service.py``)."""

from __future__ import annotations

import asyncio
import logging
import math

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
from server import core as core_types
from server.core import InferenceCore
from server.errors import ServiceError
from server.grpc_errors import abort_with, grpc_code
from server.health import HealthState
from server.observability import CallObserver
from server.oip_service import OIP_SERVICE_NAME, InferenceServicer
from server.security import BearerTokenInterceptor, server_credentials
from server.settings import ServerSettings

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


def transport_options(settings: ServerSettings) -> list[tuple[str, object]]:
    """gRPC core options: message sizes, connection age, and the time bound on calls gRPC holds for us.

    grpc.aio takes new calls from gRPC core one at a time; when they arrive faster than that (about
    1,000 a second on two cores), the excess waits in core, before any handler can refuse it. Core
    then cancels (CANCELLED) a call still unrequested after ``--max-queue-seconds`` (whole seconds, at
    least 1), so it is never served late; past 1,000 such calls it also drops new ones at random."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        # close connections after 5 minutes (with 30 s to finish calls) so that clients re-resolve DNS
        # and spread over replicas added since they connected
        ("grpc.max_connection_age_ms", 300_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]
    if settings.max_queue_seconds:
        options.append(("grpc.server_max_unrequested_time_in_server", max(1, math.ceil(settings.max_queue_seconds))))
    return options


def create_server(settings: ServerSettings, core: InferenceCore) -> tuple[grpc.aio.Server, int, HealthState]:
    """Build (not start) the server on ``settings.host:settings.port``; returns it with the bound port."""
    # the only interceptor is the optional token check: per-call bookkeeping wraps the servicers instead
    # (server.observability: an interceptor costs every call a coroutine chain and a new handler)
    sentiment = CallObserver(core.metrics, SERVICE_NAME, settings.access_log)
    interceptors = [BearerTokenInterceptor(settings.auth_token, on_refused=lambda method: sentiment.record(
        method, "UNAUTHENTICATED"))] if settings.auth_token else []
    server = grpc.aio.server(interceptors=interceptors, options=transport_options(settings))
    pb_grpc.add_SentimentServiceServicer_to_server(
        sentiment.observe(SentimentServicer(core, settings.stream_window)), server)
    health_servicer = HealthState()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    oip = CallObserver(core.metrics, OIP_SERVICE_NAME, settings.access_log)
    oip_grpc.add_GRPCInferenceServiceServicer_to_server(oip.observe(InferenceServicer(core, settings, health_servicer)),
                                                         server)
    if settings.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, OIP_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server
        )
    address = f"{settings.host}:{settings.port}"
    if settings.tls_cert:
        port = server.add_secure_port(address, server_credentials(settings.tls_cert, settings.tls_key, settings.tls_client_ca))
    else:
        port = server.add_insecure_port(address)
    return server, port, health_servicer


async def set_serving(health_servicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME, OIP_SERVICE_NAME):
        await health_servicer.set(name, status)
