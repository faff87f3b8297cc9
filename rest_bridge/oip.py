"""The Open Inference Protocol (KServe v2) over REST: each ``/v2/...`` route is one call of the server's
OIP gRPC service through the client library, so the tensors are checked once, by the server, and
errors map to HTTP with the same table as ``/predict``. Error bodies are the protocol's
``{"error": "<message>"}``, with the status name and the field at fault beside it."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, jsonify, request

from clients.errors import SentimentError
from rest_bridge import oip_json
from rest_bridge.backend import Backend
from rest_bridge.errors import error_response
from rest_bridge.oip_schemas import RepositoryIndexIn, RepositoryModelIn
from sentiment.common.tracing import server_span

BINARY_EXTENSION = "binary_tensor_data"


def needs_token(path: str) -> bool:
    """With ``--auth-token``, model metadata, inference and the repository calls need the token; health and
    readiness do not."""
    return (path.startswith("/v2/models/") and not path.endswith("/ready")) or path.startswith("/v2/repository/")


def probe(key: str, ask: Callable[[], bool]):
    """200 when true; 503 when false or when the server does not answer (as /readyz)."""
    try:
        answer = ask()
    except SentimentError as failure:
        if failure.code == "NOT_FOUND":
            raise
        answer = False
    return jsonify({key: answer}), 200 if answer else 503


def oip_blueprint(backend: Backend) -> Blueprint:
    v2 = Blueprint("oip", __name__, url_prefix="/v2")

    @v2.errorhandler(oip_json.BadTensorRequest)
    def bad_request(failure: oip_json.BadTensorRequest):
        return error_response(failure.status, "BAD_REQUEST" if failure.status == 400 else "UNPROCESSABLE_ENTITY",
                              failure.message, failure.field)

    @v2.get("")
    def server_metadata():
        metadata = backend.oip.server_metadata(timeout=backend.remaining_seconds())
        return jsonify({"name": metadata.name, "version": metadata.version,
                        "extensions": [*metadata.extensions, BINARY_EXTENSION]})

    @v2.get("/health/live")
    def live():
        return probe("live", lambda: backend.oip.server_live(timeout=backend.remaining_seconds()))

    @v2.get("/health/ready")
    def ready():
        return probe("ready", lambda: backend.oip.server_ready(timeout=backend.remaining_seconds()))

    @v2.get("/models/<name>", defaults={"version": ""})
    @v2.get("/models/<name>/versions/<version>")
    def model_metadata(name: str, version: str):
        metadata = backend.oip.model_metadata(name, version, timeout=backend.remaining_seconds())
        return jsonify(oip_json.model_metadata_json(metadata))

    @v2.get("/models/<name>/ready", defaults={"version": ""})
    @v2.get("/models/<name>/versions/<version>/ready")
    def model_ready(name: str, version: str):
        return probe("ready", lambda: backend.oip.model_ready(name, version, timeout=backend.remaining_seconds()))

    @v2.post("/models/<name>/infer", defaults={"version": ""})
    @v2.post("/models/<name>/versions/<version>/infer")
    def infer(name: str, version: str):
        parsed = oip_json.parse_infer_request(request.get_data(), request.headers.get(oip_json.HEADER_LENGTH),
                                              name, version)

        def answer() -> Response:
            reply = backend.oip.model_infer(parsed.message, timeout=backend.remaining_seconds(),
                                            request_id=backend.request_id())
            body, header_length = oip_json.infer_response_body(reply, parsed)
            if header_length is None:
                return Response(body, content_type="application/json")
            return Response(body, content_type="application/octet-stream",
                            headers={oip_json.HEADER_LENGTH: str(header_length)})

        return backend.call(request.url_rule.rule, answer)

    _repository_routes(v2, backend)
    return v2


def _repository_routes(v2: Blueprint, backend: Backend) -> None:
    """Triton's model repository extension over REST: each route one call of the server's repository RPCs,
    which answer FAILED_PRECONDITION (400) unless it runs with --model-control explicit or poll. A load
    waits as long as loading takes, up to ``BridgePolicy.load_timeout_seconds``."""

    @v2.post("/repository/index")
    def repository_index():
        body = oip_json.repository_body(request.get_data(), RepositoryIndexIn)
        entries = backend.oip.repository_index(ready=body.ready, timeout=backend.remaining_seconds())
        return jsonify([{"name": e.name, "version": e.version, "state": e.state, "reason": e.reason}
                        for e in entries])

    @v2.post("/repository/models/<name>/load")
    def repository_load(name: str):
        body = oip_json.repository_body(request.get_data(), RepositoryModelIn)
        backend.oip.load_model(name, parameters=body.parameters,
                               timeout=backend.remaining_seconds(backend.policy.load_timeout_seconds))
        return jsonify({})

    @v2.post("/repository/models/<name>/unload")
    def repository_unload(name: str):
        body = oip_json.repository_body(request.get_data(), RepositoryModelIn)
        backend.oip.unload_model(name, parameters=body.parameters, timeout=backend.remaining_seconds())
        return jsonify({})
