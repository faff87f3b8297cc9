"""The Open Inference Protocol (KServe v2) over REST: each ``/v2/...`` route is one call of the server's
OIP gRPC service through the client library, so the tensors are checked once, by the server, and
errors map to HTTP with the same table as ``/predict``. Error bodies are the protocol's
``{"error": "<message>"}``, with the status name and the field at fault beside it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, jsonify, request

from clients.errors import SentimentError
from clients.oip import InferenceClient
from rest_bridge import oip_json
from rest_bridge.errors import failure_status
from sentiment.common.tracing import server_span

BINARY_EXTENSION = "binary_tensor_data"


def needs_token(path: str) -> bool:
    """With ``--auth-token``, model metadata and inference need the token; health and readiness do not."""
    return path.startswith("/v2/models/") and not path.endswith("/ready")


@dataclass
class Limits:
    """What the bridge's other routes share with these: the call deadline and the in-flight limit."""

    remaining_seconds: Callable[[], float]
    admit: Callable[[], bool]
    release: Callable[[], None]
    count_upstream: Callable[[str], None]
    max_in_flight: int


def oip_blueprint(client: InferenceClient, limits: Limits) -> Blueprint:
    v2 = Blueprint("oip", __name__, url_prefix="/v2")

    def error(status: int, code: str, message: str, field: str | None = None) -> Response:
        body = {"error": message, "code": code}
        if field:
            body["field"] = field
        response = jsonify(body)
        response.status_code = status
        if status == 429:
            response.headers["Retry-After"] = "1"
        return response

    @v2.errorhandler(SentimentError)
    def rpc_failed(failure: SentimentError):
        limits.count_upstream(failure.code)
        status, code = failure_status(failure.code, failure.message)
        return error(status, code, failure.message, failure.field)

    @v2.errorhandler(oip_json.BadTensorRequest)
    def bad_request(failure: oip_json.BadTensorRequest):
        return error(failure.status, "BAD_REQUEST" if failure.status == 400 else "UNPROCESSABLE_ENTITY",
                     failure.message, failure.field)

    @v2.get("")
    def server_metadata():
        metadata = client.server_metadata(timeout=limits.remaining_seconds())
        return jsonify({"name": metadata.name, "version": metadata.version,
                        "extensions": [*metadata.extensions, BINARY_EXTENSION]})

    def probe(key: str, ask: Callable[[], bool]):
        """200 when true; 503 when false or when the server does not answer (as /readyz)."""
        try:
            answer = ask()
        except SentimentError as failure:
            if failure.code == "NOT_FOUND":
                raise
            answer = False
        return jsonify({key: answer}), 200 if answer else 503

    @v2.get("/health/live")
    def live():
        return probe("live", lambda: client.server_live(timeout=limits.remaining_seconds()))

    @v2.get("/health/ready")
    def ready():
        return probe("ready", lambda: client.server_ready(timeout=limits.remaining_seconds()))

    @v2.get("/models/<name>", defaults={"version": ""})
    @v2.get("/models/<name>/versions/<version>")
    def model_metadata(name: str, version: str):
        metadata = client.model_metadata(name, version, timeout=limits.remaining_seconds())
        return jsonify(oip_json.model_metadata_json(metadata))

    @v2.get("/models/<name>/ready", defaults={"version": ""})
    @v2.get("/models/<name>/versions/<version>/ready")
    def model_ready(name: str, version: str):
        return probe("ready", lambda: client.model_ready(name, version, timeout=limits.remaining_seconds()))

    @v2.post("/models/<name>/infer", defaults={"version": ""})
    @v2.post("/models/<name>/versions/<version>/infer")
    def infer(name: str, version: str):
        parsed = oip_json.parse_infer_request(request.get_data(), request.headers.get(oip_json.HEADER_LENGTH),
                                              name, version)
        rid = request.environ["sentiment.request_id"] = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        if not limits.admit():
            return error(429, "RESOURCE_EXHAUSTED", f"the bridge has {limits.max_in_flight} requests in flight, "
                         "its limit; retry later")
        try:
            with server_span(f"POST {request.url_rule.rule}", {"http.route": request.url_rule.rule}):
                answer = client.model_infer(parsed.message, timeout=limits.remaining_seconds(), request_id=rid)
        finally:
            limits.release()
        limits.count_upstream("OK")
        body, header_length = oip_json.infer_response_body(answer, parsed)
        if header_length is None:
            return Response(body, content_type="application/json")
        return Response(body, content_type="application/octet-stream",
                        headers={oip_json.HEADER_LENGTH: str(header_length)})

    return v2
