"""The Flask app factory: JSON in, one RPC on the process's one gRPC channel, JSON out."""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from concurrent.futures import Future

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from clients.client import SentimentClient
from clients.errors import SentimentError
from clients.oip import InferenceClient
from rest_bridge.coalesce import Coalescer
from rest_bridge.errors import HTTP_CODE_NAMES, error_response, failure_status
from rest_bridge.jobs import jobs_blueprint
from rest_bridge.metrics import BridgeMetrics
from rest_bridge.oip import Limits, needs_token, oip_blueprint
from rest_bridge.openapi import build_openapi
from rest_bridge.pages import pages_blueprint
from rest_bridge.schemas import ExplainIn, PredictIn
from rest_bridge.settings import BridgeSettings
from sentiment.common import __version__
from sentiment.common.tracing import server_span

log = logging.getLogger(__name__)

PROTECTED_PATHS = {"/predict", "/explain", "/v1/model"}
PROTECTED_PREFIXES = ("/v1/jobs",)


DRAIN_LIMIT_BYTES = 16 * 1024 * 1024


def _drain_unread_body() -> None:
    """Read and drop a refused body (up to 16 MiB) so the client, still uploading, gets its 413
    instead of a broken pipe when the server would otherwise close the connection mid-upload."""
    stream = request.environ.get("wsgi.input")
    remaining = min(request.content_length or 0, DRAIN_LIMIT_BYTES)
    while stream is not None and remaining > 0:
        chunk = stream.read(min(65536, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


def create_app(settings: BridgeSettings | None = None, client: SentimentClient | None = None) -> Flask:
    """Build the app. The gRPC client (and its channel) is made here, so call it after any fork.

    Routes: POST /predict, POST /explain, GET /v1/model, /healthz, /readyz, /metrics, /openapi.json, and the Open
    Inference Protocol's /v2/... (``rest_bridge/oip.py``); the pages (/, /score, /docs) and file-scoring
    jobs (/v1/jobs) come from their own blueprints."""
    settings = settings or BridgeSettings()
    client = client or SentimentClient(timeout=settings.timeout_seconds, config=settings.channel_config())
    expected_auth = f"Bearer {settings.auth_token}".encode() if settings.auth_token else None
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["sentiment_client"] = client
    metrics = BridgeMetrics()
    openapi = build_openapi(__version__)
    # Requests past this many in flight are refused at once: a bridge thread waiting on a full backend is
    # a queue nobody bounds, and callers would wait instead of backing off.
    in_flight = threading.BoundedSemaphore(settings.max_concurrent_requests)
    app.extensions["sentiment_in_flight"] = in_flight  # file-scoring jobs take their slots from it too

    def send(texts: list[str], options: tuple, timeout: float, rid: str | None) -> Future:
        """A call on its own stays the Predict call it would have been (same RPC, trace, server metrics)."""
        if len(texts) == 1:
            one = Future()
            call = client.predict_future(texts[0], **dict(options), timeout=timeout, request_id=rid)
            call.add_done_callback(lambda done: one.set_exception(done.exception()) if done.exception()
                                   else one.set_result([done.result()]))
            return one
        return client.predict_batch_future(texts, **dict(options), timeout=timeout, request_id=rid)

    coalescer = Coalescer(
        send, max_texts=settings.coalesce_max_texts, max_in_flight=settings.coalesce_calls,
        on_call=metrics.shared_call_texts.observe, clock=lambda: time.monotonic()) if settings.coalesce_calls else None
    app.extensions["sentiment_coalescer"] = coalescer

    def request_id() -> str:
        return request.headers.get("X-Request-Id") or uuid.uuid4().hex

    def remaining_seconds() -> float:
        """What is left of this request's own timeout: the bridge's setting, or less when the caller
        sends ``X-Request-Timeout`` (seconds), minus the time spent so far."""
        budget = settings.timeout_seconds
        asked = request.headers.get("X-Request-Timeout")
        if asked:
            try:
                budget = min(budget, max(0.0, float(asked)))
            except ValueError:
                pass
        # a budget already spent still yields a positive (tiny) deadline: the call then fails DEADLINE_EXCEEDED
        return max(1e-6, budget - (time.monotonic() - request.environ["sentiment.started"]))

    @app.before_request
    def start_clock_and_check_token():
        request.environ["sentiment.started"] = time.monotonic()
        if expected_auth and (request.path in PROTECTED_PATHS or needs_token(request.path)
                              or request.path.startswith(PROTECTED_PREFIXES)):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected_auth):
                response = error_response(401, "UNAUTHENTICATED", "missing or invalid bearer token")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response

    @app.errorhandler(SentimentError)
    def rpc_failed(error: SentimentError):
        metrics.upstream.labels(error.code).inc()
        status, code = failure_status(error.code, error.message)
        return error_response(status, code, error.message, error.field)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        _drain_unread_body()
        return error_response(413, "PAYLOAD_TOO_LARGE",
                              f"the body is larger than {request.max_content_length} bytes")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = error_response(error.code or 500,
                                  HTTP_CODE_NAMES.get(error.code, error.name.upper().replace(" ", "_")),
                                  error.description or error.name)
        if "Allow" in dict(error.get_headers()):  # a 405 names the methods the route has (RFC 9110)
            response.headers["Allow"] = dict(error.get_headers())["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "INTERNAL", "internal error in the bridge")

    @app.after_request
    def echo_request_id_and_count(response: Response) -> Response:
        response.headers["X-Request-Id"] = request.environ.get("sentiment.request_id") or request_id()
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        started = request.environ.get("sentiment.started")
        if started is not None:
            metrics.request_seconds.labels(route).observe(time.monotonic() - started)
        return response

    def parse_json(schema):
        """The body validated against ``schema``, or the error response (415, 400, 422) to send instead."""
        if not request.is_json:
            return None, error_response(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as JSON with Content-Type: application/json")
        body = request.get_json(silent=True)
        if body is None:
            return None, error_response(400, "BAD_REQUEST", "the body is not valid JSON")
        if not isinstance(body, dict):
            return None, error_response(422, "UNPROCESSABLE_ENTITY", "the body must be a JSON object")
        try:
            return schema.model_validate(body), None
        except ValidationError as error:
            problems = [{"field": ".".join(str(p) for p in e["loc"]) or None, "message": e["msg"]} for e in error.errors()]
            first = problems[0]
            return None, error_response(422, "UNPROCESSABLE_ENTITY", first["message"], first["field"], problems)

    def call_backend(route: str, rid: str, call):
        """One RPC for this request, within the bridge's in-flight limit (429 at once past it)."""
        if not in_flight.acquire(blocking=False):
            return error_response(429, "RESOURCE_EXHAUSTED", f"the bridge has {settings.max_concurrent_requests} "
                                  "requests in flight, its limit; retry later")
        try:
            with server_span(f"POST {route}", {"http.route": route, "request_id": rid}):
                body = call()
        finally:
            in_flight.release()
        metrics.upstream.labels("OK").inc()
        return jsonify(body)

    @app.post("/predict")
    def predict():
        parsed, refused = parse_json(PredictIn)
        if refused:
            return refused
        rid = request.environ["sentiment.request_id"] = request_id()
        options = {"truncation": parsed.truncation, "return_logits": parsed.return_logits,
                   "return_windows": parsed.return_windows, "threshold": parsed.threshold, "request_id": rid,
                   "timeout": remaining_seconds()}
        if parsed.text is not None:
            if coalescer:
                timeout = options.pop("timeout")
                del options["request_id"]
                return call_backend("/predict", rid, lambda: coalescer.predict(
                    parsed.text, tuple(options.items()), timeout, rid).to_dict())
            return call_backend("/predict", rid, lambda: client.predict(parsed.text, **options).to_dict())
        return call_backend("/predict", rid, lambda: {
            "predictions": [p.to_dict() for p in client.predict_batch(parsed.texts, **options)]})

    @app.post("/explain")
    def explain():
        parsed, refused = parse_json(ExplainIn)
        if refused:
            return refused
        rid = request.environ["sentiment.request_id"] = request_id()
        return call_backend("/explain", rid, lambda: client.explain(
            parsed.text, label=parsed.label, truncation=parsed.truncation, steps=parsed.steps,
            timeout=remaining_seconds(), request_id=rid).to_dict())

    @app.get("/v1/model")
    def model_info():
        return jsonify(client.model_info(timeout=remaining_seconds()).to_dict())

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        try:
            status = client.health(timeout=settings.ready_timeout_seconds)
        except SentimentError as error:
            status = error.code
        return jsonify({"status": status}), 200 if status == "SERVING" else 503

    @app.get("/metrics")
    def metrics_endpoint():
        payload, content_type = metrics.exposition()
        return Response(payload, content_type=content_type)

    @app.get("/openapi.json")
    def openapi_json():
        return jsonify(openapi)

    app.register_blueprint(oip_blueprint(InferenceClient(client), Limits(
        remaining_seconds=remaining_seconds, admit=lambda: in_flight.acquire(blocking=False),
        release=in_flight.release, count_upstream=lambda code: metrics.upstream.labels(code).inc(),
        max_in_flight=settings.max_concurrent_requests)))

    app.register_blueprint(pages_blueprint(settings))
    app.register_blueprint(jobs_blueprint(settings, client, in_flight))
    return app
