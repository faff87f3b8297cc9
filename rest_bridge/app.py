"""The Flask app factory: JSON in, one RPC on the process's one gRPC channel (``rest_bridge.backend``), JSON
out. The routes live in blueprints (``api``, ``classify``, ``oip``, ``jobs``, ``pages``); here are what every
request shares: the clock, the bearer token, the request id echoed back, request metrics and the error answers."""

from __future__ import annotations

import hmac
import logging
import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from clients.client import SentimentClient
from clients.errors import SentimentError
from rest_bridge.api import api_blueprint
from rest_bridge.backend import Backend
from rest_bridge.classify import classify_blueprint
from rest_bridge.errors import HTTP_CODE_NAMES, error_response, failure_status
from rest_bridge.jobs import jobs_blueprint
from rest_bridge.oip import needs_token, oip_blueprint
from rest_bridge.pages import pages_blueprint
from rest_bridge.settings import BridgePolicy, BridgeSettings

log = logging.getLogger(__name__)

PROTECTED_PATHS = {"/predict", "/explain", "/classify", "/v1/classify", "/v1/model", "/v1/models"}
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


def _protected(path: str) -> bool:
    return path in PROTECTED_PATHS or needs_token(path) or path.startswith(PROTECTED_PREFIXES)


def create_app(settings: BridgeSettings | None = None, client: SentimentClient | None = None,
               policy: BridgePolicy | None = None) -> Flask:
    """Build the app. The gRPC client (and its channel) is made here, so call it after any fork."""
    settings = settings or BridgeSettings()
    backend = Backend(settings, policy or settings.policy(), client)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["sentiment_backend"] = backend
    _install_hooks(app, backend, settings)
    _install_error_answers(app, backend)
    app.register_blueprint(api_blueprint(backend))
    app.register_blueprint(classify_blueprint(backend))
    app.register_blueprint(oip_blueprint(backend))
    app.register_blueprint(pages_blueprint(backend.policy))
    app.register_blueprint(jobs_blueprint(settings, backend))
    return app


def _install_hooks(app: Flask, backend: Backend, settings: BridgeSettings) -> None:
    expected_auth = f"Bearer {settings.auth_token}".encode() if settings.auth_token else None

    @app.before_request
    def start_clock_and_check_token():
        request.environ["sentiment.started"] = time.monotonic()
        if expected_auth and _protected(request.path):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected_auth):
                response = error_response(401, "UNAUTHENTICATED", "missing or invalid bearer token")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response

    @app.after_request
    def echo_request_id_and_count(response: Response) -> Response:
        response.headers["X-Request-Id"] = backend.request_id()
        route = request.url_rule.rule if request.url_rule else "unmatched"
        backend.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        started = request.environ.get("sentiment.started")
        if started is not None:
            backend.metrics.request_seconds.labels(route).observe(time.monotonic() - started)
        return response


def _install_error_answers(app: Flask, backend: Backend) -> None:
    """Every error is JSON: the bridge's shape, the Open Inference Protocol's under /v2, vLLM's on its routes."""

    @app.errorhandler(SentimentError)
    def rpc_failed(error: SentimentError):
        backend.failed(error)
        status, code = failure_status(error.code, error.message)
        return error_response(status, code, error.message, error.field)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        _drain_unread_body()
        return error_response(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {request.max_content_length} bytes")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = error_response(error.code or 500, HTTP_CODE_NAMES.get(error.code, error.name.upper().replace(" ", "_")),
                                  error.description or error.name)
        if "Allow" in dict(error.get_headers()):  # a 405 names the methods the route has (RFC 9110)
            response.headers["Allow"] = dict(error.get_headers())["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "INTERNAL", "internal error in the bridge")
