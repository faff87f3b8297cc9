"""``clients.oip.InferenceClient``: every method against a real server, over a ``SentimentClient``'s channel,
and its failures as ``SentimentError`` with the status code (and the field at fault) the server answered."""

from __future__ import annotations

import pytest

from clients import SentimentClient, SentimentError
from clients.oip import InferenceClient
from sentiment.oip import grpc_predict_v2_pb2 as oip
from server.transport.server import set_serving
from tests.support.helpers import LABELS, refused_port

TEXTS = ["i love this film", "terrible awful day"]


@pytest.fixture
def inference(grpc_server):
    with SentimentClient(grpc_server.target, timeout=10) as client:
        yield InferenceClient(client), client


def infer_request(texts=TEXTS, **fields) -> oip.ModelInferRequest:
    tensor = dict(name="text", datatype="BYTES", shape=[len(texts)],
                  contents=oip.InferTensorContents(bytes_contents=[t.encode() for t in texts]))
    tensor.update(fields)
    return oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(**tensor)])


def outcome(call) -> tuple[str, str | None]:
    """("OK", None) when the call answers; (code, field) of the ``SentimentError`` it raises; any other
    exception by its type's name (a failure of the client, reported as such)."""
    try:
        call()
    except SentimentError as error:
        return error.code, error.field
    except Exception as error:  # noqa: BLE001 - any other exception is the failure under test
        return f"raised {type(error).__name__}", str(error)
    return "OK", None


def test_every_method_answers_a_real_server(inference):
    client, sentiment = inference
    assert client.server_live() is True
    assert client.server_ready() is True
    assert client.model_ready("sentiment") is True and client.model_ready("sentiment", "1") is True
    server = client.server_metadata(timeout=5)
    assert server.name == "sentiment-service" and server.version
    metadata = client.model_metadata("sentiment", "1")
    assert (metadata.name, list(metadata.versions)) == ("sentiment", ["1"])
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("text", "BYTES", [-1]),
                                                                              ("text_pair", "BYTES", [-1])]
    reply = client.model_infer(infer_request(), timeout=5, request_id="oip-client-1")
    assert (reply.model_name, reply.model_version) == ("sentiment", "1")
    labels = {t.name: [b.decode() for b in t.contents.bytes_contents] for t in reply.outputs}["label"]
    assert labels == [p.label for p in sentiment.predict_batch(TEXTS)] and set(labels) <= set(LABELS)


def test_server_ready_and_model_ready_say_false_while_the_server_is_not_serving(inference, grpc_server):
    client, _ = inference
    grpc_server.call(set_serving(grpc_server.running.health, False))
    try:
        assert (client.server_ready(), client.model_ready("sentiment"), client.server_live()) == (False, False, True)
    finally:
        grpc_server.call(set_serving(grpc_server.running.health, True))
    assert client.server_ready() is True


def test_failures_are_sentiment_errors_with_the_servers_code_and_field(inference):
    client, _ = inference
    assert outcome(lambda: client.model_ready("other")) == ("NOT_FOUND", "model_name")
    assert outcome(lambda: client.model_metadata("sentiment", "2")) == ("NOT_FOUND", "model_version")
    assert outcome(lambda: client.model_infer(infer_request(datatype="INT32"))) == ("INVALID_ARGUMENT", "text")
    unknown = infer_request()
    unknown.model_name = "other"
    assert outcome(lambda: client.model_infer(unknown)) == ("NOT_FOUND", "model_name")


def test_a_server_that_is_down_is_unavailable_on_every_method():
    with refused_port() as port, SentimentClient(f"127.0.0.1:{port}", timeout=5) as sentiment:
        client = InferenceClient(sentiment)
        calls = [client.server_live, client.server_ready, client.server_metadata, lambda: client.model_ready("sentiment"),
                 lambda: client.model_metadata("sentiment"), lambda: client.model_infer(infer_request())]
        assert [outcome(call) for call in calls] == [("UNAVAILABLE", None)] * len(calls)


def test_the_sentiment_clients_token_goes_with_every_oip_call(tiny_model_dir, classifier):
    from tests.support.helpers import ServerThread, server_settings

    with ServerThread(server_settings(tiny_model_dir, auth_token="oip-token"), classifier) as server:
        with SentimentClient(server.target, timeout=10, token="oip-token") as sentiment:
            client = InferenceClient(sentiment)
            calls = [client.server_live, lambda: client.model_ready("sentiment"), lambda: client.model_infer(infer_request())]
            assert [outcome(call) for call in calls] == [("OK", None)] * 3
        with SentimentClient(server.target, timeout=10, token="wrong") as sentiment:
            client = InferenceClient(sentiment)
            assert outcome(lambda: client.model_infer(infer_request())) == ("UNAUTHENTICATED", None)
            assert outcome(lambda: client.model_metadata("sentiment")) == ("UNAUTHENTICATED", None)
