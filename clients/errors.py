"""The client's one exception type: every ``grpc.RpcError`` becomes a ``SentimentError``."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class SentimentError(Exception):
    """A failed call: ``code`` is the gRPC status code name (``INVALID_ARGUMENT``, ``UNAVAILABLE``, ...)."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "SentimentError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else None) or str(error)
        field = None
        try:
            status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
        except ValueError:
            status = None
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                if bad_request.field_violations:
                    field = bad_request.field_violations[0].field
        return cls(code.name if code else "UNKNOWN", message, field)
