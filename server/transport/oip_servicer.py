"""The Open Inference Protocol (KServe v2) over gRPC: a thin servicer over the same inference core as
``sentiment.v1``. Tensors are converted in ``server/oip_converters.py``; errors map as everywhere else."""

from __future__ import annotations

from sentiment.common import __version__
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from server.transport import oip_converters as convert
from server.core.inference import InferenceCore
from server.errors import NotFound
from server.transport.errors import maps_errors
from server.transport.health import HealthState

OIP_SERVICE_NAME = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "sentiment-service"


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(self, core: InferenceCore, health: HealthState, model_name: str, model_version: str):
        self.core = core
        self.model_name = model_name
        self.model_version = model_version
        self.health = health

    def _check_model(self, name: str, version: str) -> None:
        if name != self.model_name:
            raise NotFound(f"unknown model '{name}'; this server serves '{self.model_name}'", field="model_name")
        if version and version != self.model_version:
            raise NotFound(f"model '{name}' has no version '{version}'; it serves version '{self.model_version}'",
                           field="model_version")

    async def ServerLive(self, request, context):
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return oip.ServerReadyResponse(ready=self.health.serving())

    @maps_errors
    async def ModelReady(self, request, context):
        self._check_model(request.name, request.version)
        return oip.ModelReadyResponse(ready=self.health.serving(OIP_SERVICE_NAME))

    async def ServerMetadata(self, request, context):
        return oip.ServerMetadataResponse(name=SERVER_NAME, version=__version__)

    @maps_errors
    async def ModelMetadata(self, request, context):
        self._check_model(request.name, request.version)
        info = self.core.model_info()
        return convert.model_metadata(self.model_name, self.model_version, len(info.labels), info.engine)

    @maps_errors
    async def ModelInfer(self, request, context):
        self._check_model(request.model_name, request.model_version)
        call = convert.parse_infer_request(request)
        predictions = await self.core.predict(call.texts, call.options, timeout=context.time_remaining())
        return convert.infer_response(request, call, predictions, self.core.model_info().labels, self.model_version)
