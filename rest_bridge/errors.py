"""The one gRPC -> HTTP status table (grpc-gateway's), and JSON error bodies."""

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


def http_status(grpc_code: str) -> int:
    return HTTP_STATUS.get(grpc_code, 500)


def error_body(code: str, message: str, field: str | None = None, details: list | None = None) -> dict:
    error = {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, field: str | None = None, details: list | None = None) -> Response:
    """A JSON error answer; 429s say when to come back (``Retry-After``)."""
    response = jsonify(error_body(code, message, field, details))
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response
