"""The Open Inference Protocol (KServe v2) over gRPC: a thin servicer over the same model manager as
``sentiment.v1``, with Triton's model repository extension. Tensors are converted in
``server/transport/oip_converters.py``; errors map as everywhere else."""

from __future__ import annotations

from sentiment.common import __version__
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from server.errors import InvalidInput, NotAllowed
from server.repository.manager import ModelManager
from server.transport import oip_converters as convert
from server.transport.errors import maps_errors
from server.transport.health import HealthState

OIP_SERVICE_NAME = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
SERVER_NAME = "sentiment-service"
REPOSITORY_EXTENSION = "model_repository"
CLASSIFICATION_EXTENSION = "classification"  # Triton's: top-k labels of an output (server.transport.oip_converters)
CONTROL_MODES = ("explicit", "poll")  # --model-control values under which the repository calls are answered


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: ModelManager, health: HealthState, model_control: str = "none"):
        self.models = models
        self.health = health
        self.model_control = model_control

    async def ServerLive(self, request, context):
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return oip.ServerReadyResponse(ready=self.health.serving())

    @maps_errors
    async def ModelReady(self, request, context):
        core = self.models.core(request.name, request.version)
        return oip.ModelReadyResponse(ready=core.ready and self.health.serving(OIP_SERVICE_NAME))

    async def ServerMetadata(self, request, context):
        extensions = [CLASSIFICATION_EXTENSION]
        if self.model_control in CONTROL_MODES:
            extensions.append(REPOSITORY_EXTENSION)
        return oip.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=extensions)

    @maps_errors
    async def ModelMetadata(self, request, context):
        served = self.models.version_of(request.name, request.version)
        info = served.core.model_info()
        versions = [request.version] if request.version else [v.version for v in self.models.model_versions(served.name)]
        return convert.model_metadata(served.name, versions, len(info.labels), info.engine)

    @maps_errors
    async def ModelInfer(self, request, context):
        served = self.models.version_of(request.model_name, request.model_version)
        call = convert.parse_infer_request(request)
        predictions = await served.core.predict(call.texts, call.options, timeout=context.time_remaining(),
                                                pairs=call.pairs)
        return convert.infer_response(request, call, predictions, served.core.classifier.labels, served.version)

    # -- Triton's model repository extension --------------------------------------------------------------

    def _check_control(self, repository: str) -> None:
        if self.model_control not in CONTROL_MODES:
            raise NotAllowed("the model repository API is off: start the server with --model-control explicit "
                             "(or poll)")
        if repository:
            raise InvalidInput(f"unknown repository '{repository}': the server has one, named ''",
                               field="repository_name")

    @maps_errors
    async def RepositoryIndex(self, request, context):
        self._check_control(request.repository_name)
        return oip.RepositoryIndexResponse(models=[
            oip.RepositoryIndexResponse.ModelIndex(name=name, version=version, state=state, reason=reason)
            for name, version, state, reason in self.models.index(ready_only=request.ready)])

    @maps_errors
    async def RepositoryModelLoad(self, request, context):
        self._check_control(request.repository_name)
        convert.repository_parameters(request.parameters, allowed=())
        await self.models.load(request.model_name)
        return oip.RepositoryModelLoadResponse()

    @maps_errors
    async def RepositoryModelUnload(self, request, context):
        self._check_control(request.repository_name)
        convert.repository_parameters(request.parameters, allowed=("unload_dependents",))
        await self.models.unload(request.model_name)
        return oip.RepositoryModelUnloadResponse()
