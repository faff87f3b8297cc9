"""The one gRPC -> HTTP status table (grpc-gateway's), and the one builder of JSON error answers, in the shape
of the protocol the request's path speaks: the bridge's own, the Open Inference Protocol's for ``/v2``, vLLM's
for its classification API (``/classify``, ``/v1/classify``)."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, jsonify, request

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


# vLLM's ErrorInfo.type: the name of the OpenAI SDK's exception for the status, as vLLM writes it
# ("NotFoundError" for a model it does not serve, "BadRequestError" by default)
VLLM_ERROR_TYPES = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                    404: "NotFoundError", 409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError"}
VLLM_PATHS = {"/classify", "/v1/classify"}


def vllm_error_type(status: int) -> str:
    if status in VLLM_ERROR_TYPES:
        return VLLM_ERROR_TYPES[status]
    if status >= 500:
        return "InternalServerError"
    try:
        return HTTPStatus(status).phrase  # as vLLM names the errors of its HTTP layer (405, 413, ...)
    except ValueError:
        return "Error"  # 499 (CANCELLED) has no phrase


def error_body(status: int, code: str, message: str, field: str | None = None, details: list | None = None, *,
               protocol: str = "bridge") -> dict:
    """``{"error": {"code", "message", "field", "details"}}``; for the Open Inference Protocol its
    ``{"error": "<message>"}`` with the code and the field beside it; for vLLM's API its ErrorResponse,
    ``{"error": {"message", "type", "param", "code": <HTTP status>}}``."""
    if protocol == "vllm":
        return {"error": {"message": message, "type": vllm_error_type(status), "param": field, "code": status}}
    oip = protocol == "oip"
    error = {"error": message, "code": code} if oip else {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return error if oip else {"error": error}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   details: list | None = None) -> Response:
    """A JSON error answer in the shape of the request's protocol (``protocol_of``); 429s say when to come back
    (``Retry-After``)."""
    response = jsonify(error_body(status, code, message, field, details, protocol=protocol_of(request.path)))
    response.status_code = status
    if status == 429:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def protocol_of(path: str) -> str:
    """Which protocol a route speaks, and so the shape of its errors: "oip" (``/v2``), "vllm" or "bridge"."""
    if path == "/v2" or path.startswith("/v2/"):
        return "oip"
    return "vllm" if path in VLLM_PATHS else "bridge"
