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
