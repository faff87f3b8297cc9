"""The server's ``--long-text``: what a request that says nothing about truncation gets for a text over the
model's limit, the same over every protocol (sentiment.v1, the Open Inference Protocol over gRPC, and
through the bridge's /predict and /v2)."""

from __future__ import annotations

import grpc
import pytest
import requests

from clients import SentimentClient, SentimentError
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from tests.support.bridge import BridgeThread
from tests.support.helpers import LABELS, ServerThread, server_settings, wait_for

LONG = "good " * 200  # over the tiny model's 64 tokens
SHORT = "good film"


@pytest.fixture(scope="module")
def rejecting(tiny_model_dir, classifier):
    with ServerThread(server_settings(tiny_model_dir, long_text="reject"), classifier) as server:
        with BridgeThread(server.target) as bridge:
            yield server, bridge.url


def infer_request(text: str, truncation: str | None = None) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[1], contents=oip.InferTensorContents(bytes_contents=[text.encode()]))])
    if truncation is not None:
        request.parameters["truncation"].string_param = truncation
    return request


def code_of(call) -> str:
    """The status a call ends with: OK, or its error's code (an assertion on it fails as an assertion)."""
    try:
        call()
    except SentimentError as error:
        return error.code
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def test_long_text_reject_refuses_a_long_text_over_sentiment_v1(rejecting):
    server, _ = rejecting
    with SentimentClient(server.target, timeout=30) as client:
        assert client.model_info().long_text == "reject"
        assert code_of(lambda: client.predict(LONG)) == "INVALID_ARGUMENT"
        assert code_of(lambda: client.predict_batch([SHORT, LONG])) == "INVALID_ARGUMENT"
        assert client.predict(SHORT).label in LABELS  # a text within the limit is answered
        asked = client.predict(LONG, truncation="truncate")  # a request that says so is still cut
        assert (asked.truncated, asked.num_tokens) == (True, 64)


def test_long_text_reject_refuses_a_long_text_over_the_open_inference_protocol(rejecting):
    server, _ = rejecting
    with grpc.insecure_channel(server.target) as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        assert code_of(lambda: stub.ModelInfer(infer_request(LONG), timeout=30)) == "INVALID_ARGUMENT"  # no parameter
        assert stub.ModelInfer(infer_request(SHORT), timeout=30).outputs[0].name == "label"
        assert stub.ModelInfer(infer_request(LONG, "truncate"), timeout=30).outputs[0].name == "label"


def test_long_text_reject_refuses_a_long_text_through_the_bridge_with_400(rejecting):
    _, bridge = rejecting
    for body in ({"text": LONG}, {"texts": [SHORT, LONG]}):
        refused = requests.post(f"{bridge}/predict", json=body, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_ARGUMENT", refused.text
    oip_body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [LONG]}]}
    refused = requests.post(f"{bridge}/v2/models/sentiment/infer", json=oip_body, timeout=30)
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_ARGUMENT", refused.text
    assert requests.post(f"{bridge}/predict", json={"text": SHORT}, timeout=30).status_code == 200
    cut = requests.post(f"{bridge}/predict", json={"text": LONG, "truncation": "truncate"}, timeout=30)
    assert cut.status_code == 200 and cut.json()["truncated"] is True


def test_a_file_scoring_job_that_says_nothing_gets_the_servers_long_text_too(rejecting):
    """An upload without a truncation is read as the server's --long-text says (here: the long row is refused,
    alone, and the others scored); one that asks for truncate has its long row cut."""
    _, bridge = rejecting
    body = "text\n" + "\n".join([SHORT, LONG, "bad film"]) + "\n"

    def scored(**form) -> dict:
        created = requests.post(f"{bridge}/v1/jobs", files={"file": ("rows.csv", body, "text/csv")}, data=form,
                                timeout=30)
        assert created.status_code == 202, created.text
        status_url = f"{bridge}{created.headers['Location']}"
        wait_for(lambda: requests.get(status_url, timeout=10).json()["state"] not in ("queued", "running"),
                 what="the job to finish")
        return requests.get(status_url, timeout=10).json()

    default = scored()
    assert (default["state"], default["truncation"], default["done"], default["errors"]) == ("done", None, 3, 1)
    cut = scored(truncation="truncate")
    assert (cut["state"], cut["truncation"], cut["errors"]) == ("done", "truncate", 0)
