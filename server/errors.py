"""The inference core's typed errors. Each transport maps them once (gRPC codes, HTTP statuses)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``code`` is the transport-neutral name every adapter maps."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The caller sent something the service will never accept (empty text, too long, bad option)."""

    code = "INVALID_ARGUMENT"


class Overloaded(ServiceError):
    """The request queue is full: retry later."""

    code = "RESOURCE_EXHAUSTED"


class NotReady(ServiceError):
    """The model is still loading or warming up, or the service is shutting down."""

    code = "UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed before the work could run."""

    code = "DEADLINE_EXCEEDED"


class ModelLoadError(ServiceError):
    """A checkpoint could not be loaded (missing, unsafe weights, not a sequence classifier)."""

    code = "FAILED_PRECONDITION"


class NotFound(ServiceError):
    """The caller named a model or version this server does not serve (Open Inference Protocol)."""

    code = "NOT_FOUND"


class Cancelled(ServiceError):
    """The caller went away while its work ran (an explanation stops at its next forward pass)."""

    code = "CANCELLED"


class NotAllowed(ServiceError):
    """The server's state or settings do not allow the call (a repository call without --model-control, the
    default model's unload)."""

    code = "FAILED_PRECONDITION"
