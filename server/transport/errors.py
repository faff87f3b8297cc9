"""The one place core errors become gRPC statuses, for every gRPC service of the server: the code table,
the rich status, and ``maps_errors``, the one decorator every RPC method (unary or streaming) wears."""

from __future__ import annotations

import functools
import inspect

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.errors import ServiceError

GRPC_CODES = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": grpc.StatusCode.DEADLINE_EXCEEDED,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "CANCELLED": grpc.StatusCode.CANCELLED,
    "UNIMPLEMENTED": grpc.StatusCode.UNIMPLEMENTED,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


def grpc_code(error: ServiceError) -> grpc.StatusCode:
    return GRPC_CODES.get(error.code, grpc.StatusCode.INTERNAL)


def rich_status(error: ServiceError) -> status_pb2.Status:
    """A google.rpc.Status with a BadRequest field violation when the error names a field."""
    code = grpc_code(error)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if error.field:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
        ]))
        status.details.append(detail)
    return status


async def abort_with(context: grpc.aio.ServicerContext, error: ServiceError):
    """End the call with the error's status and details, keeping the trailers already set (the request id)."""
    status = rpc_status.to_status(rich_status(error))
    await context.abort(status.code, status.details, tuple(context.trailing_metadata() or ()) + tuple(status.trailing_metadata))


def maps_errors(method):
    """An RPC method (a coroutine, or an async generator for streaming responses) whose ``ServiceError``
    ends the call with the error's status and details (MLServer's ``handle_mlserver_error``)."""
    if inspect.isasyncgenfunction(method):
        @functools.wraps(method)
        async def streaming(self, request, context):
            try:
                async for response in method(self, request, context):
                    yield response
            except ServiceError as error:
                await abort_with(context, error)

        return streaming

    @functools.wraps(method)
    async def unary(self, request, context):
        try:
            return await method(self, request, context)
        except ServiceError as error:
            await abort_with(context, error)

    return unary
