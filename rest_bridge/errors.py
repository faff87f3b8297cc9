"""The one gRPC -> HTTP status table (grpc-gateway's), and the one builder of JSON error answers (in the
bridge's own shape, or the Open Inference Protocol's for ``/v2``)."""

from __future__ import annotations

from flask import Response, jsonify

RETRY_AFTER_SECONDS = "1"

HTTP_STATUS = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# For errors the bridge finds itself, before any RPC.
HTTP_CODE_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
                   413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY", 500: "INTERNAL"}


# gRPC core's words when a message is over the channel's or the server's --max-message-bytes
# ("Sent message larger than max (N vs. M)", "Received message larger than max ..."): also
# RESOURCE_EXHAUSTED, but a retry cannot help, so it is 413, not 429 with Retry-After
MESSAGE_TOO_LARGE = "message larger than max"


def http_status(grpc_code: str, message: str = "") -> int:
    if grpc_code == "RESOURCE_EXHAUSTED" and MESSAGE_TOO_LARGE in message:
        return 413
    return HTTP_STATUS.get(grpc_code, 500)


def failure_status(grpc_code: str, message: str) -> tuple[int, str]:
    """The HTTP status and the error code for the body of a failed call."""
    status = http_status(grpc_code, message)
    return status, ("PAYLOAD_TOO_LARGE" if status == 413 else grpc_code)


def error_body(code: str, message: str, field: str | None = None, details: list | None = None, *,
               oip: bool = False) -> dict:
    """``{"error": {"code", "message", "field", "details"}}``; for the Open Inference Protocol its
    ``{"error": "<message>"}`` with the code and the field beside it."""
    error = {"error": message, "code": code} if oip else {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return error if oip else {"error": error}


def error_response(status: int, code: str, message: str, field: str | None = None, details: list | None = None, *,
                   oip: bool = False) -> Response:
    """A JSON error answer; 429s say when to come back (``Retry-After``)."""
    response = jsonify(error_body(code, message, field, details, oip=oip))
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def is_oip_path(path: str) -> bool:
    """Routes of the Open Inference Protocol, whose errors take its shape."""
    return path == "/v2" or path.startswith("/v2/")
