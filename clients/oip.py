"""Open Inference Protocol (KServe v2) calls over a ``SentimentClient``'s channel, in protobuf messages.

The REST bridge transcodes ``/v2/...`` JSON into these calls. Import this module only where it is
needed: its ``inference.*`` messages share their names with tritonclient's, and protobuf refuses to load
both in one process, so ``import clients`` alone leaves it out."""

from __future__ import annotations

from clients.client import SentimentClient
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc


class InferenceClient:
    """``InferenceClient(sentiment_client).model_infer(request)``: one channel serves both protocols, with
    the same deadlines, retries and ``SentimentError`` on failure."""

    def __init__(self, client: SentimentClient):
        self._client = client
        self._stub = oip_grpc.GRPCInferenceServiceStub(client._channel)

    def server_live(self, *, timeout: float | None = None) -> bool:
        return self._client._call(self._stub.ServerLive, oip.ServerLiveRequest(), timeout).live

    def server_ready(self, *, timeout: float | None = None) -> bool:
        return self._client._call(self._stub.ServerReady, oip.ServerReadyRequest(), timeout).ready

    def model_ready(self, name: str, version: str = "", *, timeout: float | None = None) -> bool:
        request = oip.ModelReadyRequest(name=name, version=version)
        return self._client._call(self._stub.ModelReady, request, timeout).ready

    def server_metadata(self, *, timeout: float | None = None) -> oip.ServerMetadataResponse:
        return self._client._call(self._stub.ServerMetadata, oip.ServerMetadataRequest(), timeout)

    def model_metadata(self, name: str, version: str = "", *,
                       timeout: float | None = None) -> oip.ModelMetadataResponse:
        request = oip.ModelMetadataRequest(name=name, version=version)
        return self._client._call(self._stub.ModelMetadata, request, timeout)

    def model_infer(self, request: oip.ModelInferRequest, *, timeout: float | None = None,
                    request_id: str | None = None) -> oip.ModelInferResponse:
        return self._client._call(self._stub.ModelInfer, request, timeout, request_id)

    # Triton's model repository extension (the server must run with --model-control explicit or poll)

    def repository_index(self, *, ready: bool = False,
                         timeout: float | None = None) -> list[oip.RepositoryIndexResponse.ModelIndex]:
        """Every model version the server knows (only the ready ones with ``ready``), with state and reason."""
        return list(self._client._call(self._stub.RepositoryIndex, oip.RepositoryIndexRequest(ready=ready),
                                        timeout).models)

    def load_model(self, name: str, *, parameters: dict | None = None, timeout: float | None = None) -> None:
        """Load or reload ``name``: the versions its policy selects warm up, then take over from the others
        (idempotent: a second load of what is loaded changes nothing). Give it a timeout that covers a load.
        ``parameters``: name -> bool, int, str or bytes (the server takes none for a load)."""
        request = oip.RepositoryModelLoadRequest(model_name=name, parameters=repository_parameters(parameters))
        self._client._call(self._stub.RepositoryModelLoad, request, timeout)

    def unload_model(self, name: str, *, parameters: dict | None = None, timeout: float | None = None) -> None:
        """Stop routing calls to ``name``; the calls it admitted finish, then it leaves memory.
        ``parameters``: as tritonclient's, e.g. {"unload_dependents": False}."""
        request = oip.RepositoryModelUnloadRequest(model_name=name, parameters=repository_parameters(parameters))
        self._client._call(self._stub.RepositoryModelUnload, request, timeout)


def repository_parameters(values: dict | None) -> dict[str, oip.ModelRepositoryParameter]:
    """Plain values as ModelRepositoryParameter messages (bool, int, str or bytes)."""
    kinds = ((bool, "bool_param"), (int, "int64_param"), (str, "string_param"), (bytes, "bytes_param"))
    converted = {}
    for name, value in (values or {}).items():
        kind = next((field for python, field in kinds if isinstance(value, python)), None)
        if kind is None:
            raise ValueError(f"parameter {name!r} must be a bool, int, str or bytes, not {type(value).__name__}")
        converted[name] = oip.ModelRepositoryParameter(**{kind: value})
    return converted
