"""The REST bridge over a real HTTP socket, in front of a real gRPC server."""

from __future__ import annotations

import socket
import threading

import jsonschema
import pytest
import requests
from werkzeug.serving import make_server

from clients import SentimentClient
from rest_bridge.app import create_app
from rest_bridge.settings import BridgeSettings
from tests.support.bridge import BridgeThread
from tests.support.helpers import LABELS, MAX_TEXT_CHARS


@pytest.fixture(scope="module")
def bridge(grpc_server):
    with BridgeThread(grpc_server.target, max_body_bytes=64 * 1024) as running:
        yield running.url


def post(url, body=None, **kwargs):
    return requests.post(f"{url}/predict", json=body, timeout=10, **kwargs)


def test_seed_contract_text_in_predicted_class_out(bridge):
    response = post(bridge, {"text": "I love this"})
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["predicted_class"], int)
    assert body["label"] == LABELS[body["predicted_class"]]
    assert set(body["scores"]) == set(LABELS)
    assert body["truncated"] is False and body["num_tokens"] == 5
    assert "logits" not in body


def test_texts_answer_predictions_in_order_matching_grpc(bridge, grpc_server):
    texts = ["i love this", "terrible film", "okay day"]
    response = post(bridge, {"texts": texts, "return_logits": True})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    with SentimentClient(grpc_server.target) as client:
        direct = client.predict_batch(texts)
    assert [p["predicted_class"] for p in predictions] == [d.class_id for d in direct]
    assert all(len(p["logits"]) == 3 for p in predictions)


def test_chunk_reads_a_long_text_whole_and_reports_its_windows(bridge):
    text = "good film " * 60  # 120 tokens: three windows of the tiny model's 64
    body = post(bridge, {"text": text, "truncation": "chunk", "return_windows": True}).json()
    assert body["windows"] == 3 and body["truncated"] is False
    assert len(body["window_predictions"]) == 3
    for window in body["window_predictions"]:
        assert set(window) >= {"start", "end", "label", "predicted_class", "scores", "num_tokens"}
        assert text[window["start"] : window["end"]].strip()
    plain = post(bridge, {"text": text, "truncation": "chunk"}).json()
    assert plain["windows"] == 3 and "window_predictions" not in plain
    assert "windows" not in post(bridge, {"text": text}).json()


def test_truncation_reported_and_reject_gives_400(bridge):
    assert post(bridge, {"text": "good " * 300}).json()["truncated"] is True
    response = post(bridge, {"text": "good " * 300, "truncation": "reject"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("kwargs, status, code", [
    ({"data": "text=hello", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "BAD_REQUEST"),
    ({"json": ["a", "list"]}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {"text": 5}}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {"texts": "not a list"}}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {"text": "a", "texts": ["b"]}}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {}}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {"text": "a", "truncation": "sometimes"}}, 422, "UNPROCESSABLE_ENTITY"),
    ({"json": {"text": ""}}, 400, "INVALID_ARGUMENT"),
    ({"json": {"texts": []}}, 400, "INVALID_ARGUMENT"),
    ({"json": {"texts": ["a"] * 17}}, 400, "INVALID_ARGUMENT"),
    ({"json": {"text": "x" * (MAX_TEXT_CHARS + 1)}}, 400, "INVALID_ARGUMENT"),
    ({"json": {"text": "x" * 70000}}, 413, "PAYLOAD_TOO_LARGE"),
])
def test_bad_input_gets_a_clear_json_4xx(bridge, kwargs, status, code):
    response = requests.post(f"{bridge}/predict", timeout=10, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_unknown_routes_and_methods_answer_json_not_html(bridge):
    missing = requests.get(f"{bridge}/nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    wrong_method = requests.get(f"{bridge}/predict", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_health_ready_and_model_info(bridge, tiny_model_dir):
    assert requests.get(f"{bridge}/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{bridge}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json() == {"status": "SERVING", "models": [{"name": "sentiment", "version": "1", "state": "READY"}]}
    info = requests.get(f"{bridge}/v1/model", timeout=10).json()
    assert info["labels"] == LABELS and info["model_source"] == str(tiny_model_dir)
    assert (info["name"], info["version"]) == ("sentiment", "1") and info["estimated_memory_bytes"] > 0


def test_request_id_is_echoed_or_generated(bridge):
    assert post(bridge, {"text": "good"}, headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    assert len(post(bridge, {"text": "good"}).headers["X-Request-Id"]) == 32


def test_openapi_document_matches_what_the_bridge_answers(bridge):
    document = requests.get(f"{bridge}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]

    def check(instance, ref):
        jsonschema.validate(instance, {"$ref": f"#/components/schemas/{ref}", "components": {"schemas": schemas}})

    check({"text": "hi"}, "PredictIn")
    check(post(bridge, {"text": "i love this"}).json(), "PredictionOut")
    check(post(bridge, {"texts": ["good", "bad"]}).json(), "PredictBatchOut")
    check(post(bridge, {"text": ""}).json(), "ErrorOut")
    check(requests.get(f"{bridge}/v1/model", timeout=10).json(), "ModelInfo")
    check(requests.get(f"{bridge}/v1/models", timeout=10).json(), "ModelsOut")
    check(requests.get(f"{bridge}/readyz", timeout=10).json(), "StatusOut")
    check(post(bridge, {"text": "good film " * 60, "truncation": "chunk", "return_windows": True}).json(),
          "PredictionOut")
    check({"text": "hi", "label": "positive", "steps": 20}, "ExplainIn")
    check(requests.post(f"{bridge}/explain", json={"text": "i love this", "steps": 8}, timeout=30).json(), "ExplainOut")
    assert {p for p in document["paths"] if not p.startswith("/v2")} == {
        "/predict", "/explain", "/v1/model", "/v1/models", "/healthz", "/readyz", "/metrics", "/openapi.json",  # the API
        "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result",  # file scoring
        "/classify", "/v1/classify",  # vLLM's classification API
        "/", "/score", "/docs", "/docs/assets/{filename}", "/static/{filename}"}  # the pages
    assert set(document["paths"]["/predict"]["post"]["responses"]) >= {"200", "400", "413", "415", "422", "429", "503"}


def test_the_schema_says_what_the_server_refuses(bridge):
    """What the server refuses (blank texts, an empty list, steps past int32) is invalid in /openapi.json too,
    so schema-driven clients and fuzzers never send it expecting success; 2.0 is an integer, as in JSON Schema."""
    schemas = requests.get(f"{bridge}/openapi.json", timeout=10).json()["components"]["schemas"]

    def valid(instance, ref) -> bool:
        schema = {"$ref": f"#/components/schemas/{ref}", "components": {"schemas": schemas}}
        return jsonschema.Draft202012Validator(schema).is_valid(instance)

    for body in ({"text": ""}, {"text": " \t\u3000\x1c"}, {"texts": []}, {"texts": ["good", " "]}):
        assert not valid(body, "PredictIn"), body
        assert post(bridge, body).status_code == 400, body
    assert valid({"text": "\ufeffok"}, "PredictIn") and valid({"texts": ["good", "bad"]}, "PredictIn")
    assert not valid({"text": "good", "threshold": True}, "PredictIn")  # a boolean is not a number here
    assert post(bridge, {"text": "good", "threshold": True}).status_code == 422
    for body in ({"text": " "}, {"text": "good", "steps": 0}, {"text": "good", "steps": 2**31}):
        assert not valid(body, "ExplainIn"), body
        assert requests.post(f"{bridge}/explain", json=body, timeout=30).status_code in (400, 422), body
    assert valid({"text": "good", "steps": 4.0}, "ExplainIn")
    assert requests.post(f"{bridge}/explain", json={"text": "good", "steps": 4.0}, timeout=30).status_code == 200


def test_not_blank_is_exactly_pythons_whitespace():
    """The schema's pattern and the server's ``text.strip()`` agree on every code point."""
    import re

    from rest_bridge.schemas import NOT_BLANK

    pattern = re.compile(NOT_BLANK)
    disagree = [hex(c) for c in range(0x110000) if 0xD800 > c or c > 0xDFFF
                if (pattern.fullmatch(chr(c)) is None) != chr(c).isspace()]
    assert disagree == []


def test_backend_down_answers_503_quickly_and_readyz_follows():
    with socket.socket() as unused:  # bound, never listening: connections to it are refused for the whole test
        unused.bind(("127.0.0.1", 0))
        _backend_down(unused.getsockname()[1])


def _backend_down(port: int):
    with BridgeThread(f"127.0.0.1:{port}", timeout_seconds=2.0) as dead:
        response = post(dead.url, {"text": "hello"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "UNAVAILABLE"
        assert requests.get(f"{dead.url}/readyz", timeout=10).status_code == 503
        assert requests.get(f"{dead.url}/healthz", timeout=10).status_code == 200


def test_callers_can_shorten_the_deadline_and_get_504(bridge):
    response = post(bridge, {"texts": ["good film"] * 16}, headers={"X-Request-Timeout": "0"})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "DEADLINE_EXCEEDED"


def test_a_backend_that_lacks_an_rpc_answers_501_in_each_routes_error_shape():
    """UNIMPLEMENTED reaches the bridge from a backend that serves neither the OIP service nor sentiment.v1's
    methods (an older or another server: gRPC answers UNIMPLEMENTED for each): 501 on every route that calls
    it, in the bridge's error body, or the Open Inference Protocol's under /v2."""
    from concurrent import futures

    import grpc

    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

    backend = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_SentimentServiceServicer_to_server(pb_grpc.SentimentServiceServicer(), backend)  # every method UNIMPLEMENTED
    port = backend.add_insecure_port("127.0.0.1:0")
    backend.start()
    try:
        with BridgeThread(f"127.0.0.1:{port}") as bridge:
            own = [post(bridge.url, {"text": "good"}), post(bridge.url, {"texts": ["good", "bad"]}),
                   requests.post(f"{bridge.url}/explain", json={"text": "good"}, timeout=10),
                   requests.get(f"{bridge.url}/v1/model", timeout=10),
                   requests.post(f"{bridge.url}/v1/jobs", files={"file": ("a.csv", "text\ngood\n")}, timeout=10)]
            oip = [requests.get(f"{bridge.url}/v2", timeout=10),
                   requests.get(f"{bridge.url}/v2/models/sentiment", timeout=10),
                   requests.post(f"{bridge.url}/v2/models/sentiment/infer", timeout=10, json={
                       "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}]})]
    finally:
        backend.stop(0)
    assert [(r.status_code, r.json()["error"]["code"]) for r in own] == [(501, "UNIMPLEMENTED")] * len(own)
    assert [(r.status_code, r.json().get("code"), type(r.json()["error"])) for r in oip] == [(501, "UNIMPLEMENTED", str)] * 3


def test_a_backend_client_certificate_without_its_key_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="go together"):
        BridgeSettings(backend_client_cert=tmp_path / "client.pem")
