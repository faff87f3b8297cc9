"""The server's serving state, kept in one place: the standard grpc.health.v1 service, which the Open
Inference Protocol's readiness calls read too."""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthState(health.aio.HealthServicer):
    """``grpc.health.v1.Health`` that also answers ``serving(service)`` for the server's other protocols."""

    def __init__(self):
        super().__init__()
        self._statuses: dict[str, int] = {}
        self._shutting_down = False

    async def set(self, service: str, status) -> None:
        if not self._shutting_down:  # as the base class: no status changes after graceful shutdown
            self._statuses[service] = status
        await super().set(service, status)

    async def enter_graceful_shutdown(self) -> None:
        self._shutting_down = True
        self._statuses = dict.fromkeys(self._statuses, NOT_SERVING)
        await super().enter_graceful_shutdown()

    def serving(self, service: str = "") -> bool:
        return self._statuses.get(service) == SERVING
