"""The server's Prometheus endpoint after a test load."""

from __future__ import annotations

import requests

from clients import SentimentError
from tests.support.helpers import wait_for
from tests.support.helpers import metric_samples


def test_server_metrics_count_calls_batches_and_describe_the_model(grpc_server, client):
    for i in range(10):
        client.predict(f"good film {i}")
    client.predict_batch(["good", "bad", "okay"])
    try:
        client.predict("")
    except SentimentError:
        pass
    refused = ("sentiment_grpc_requests_total", (("code", "INVALID_ARGUMENT"), ("method", "Predict")))

    def scrape():
        return metric_samples(requests.get(f"http://127.0.0.1:{grpc_server.running.metrics_port}/metrics", timeout=10).text)

    # an aborted call's status reaches the client before the server's interceptor has counted it: wait for it
    samples = wait_for(lambda: (lambda s: s if refused in s else None)(scrape()), timeout=10, what="the refused call's count")
    assert samples[("sentiment_grpc_requests_total", (("code", "OK"), ("method", "Predict")))] >= 10
    assert samples[("sentiment_grpc_requests_total", (("code", "INVALID_ARGUMENT"), ("method", "Predict")))] >= 1
    assert samples[("sentiment_grpc_requests_total", (("code", "OK"), ("method", "PredictBatch")))] >= 1
    assert samples[("sentiment_grpc_request_duration_seconds_count", (("method", "Predict"),))] >= 11
    model = (("model", "sentiment"), ("version", "1"))  # every model-level metric names its model and version
    assert samples[("sentiment_texts_processed_total", model)] >= 13
    assert samples[("sentiment_batch_size_count", model)] >= 1
    assert samples[("sentiment_batch_tokens_sum", model)] > 0
    assert samples[("sentiment_queue_wait_seconds_count", model)] >= 13
    assert samples[("sentiment_inference_duration_seconds_count", model)] >= 1
    assert ("sentiment_queue_depth", model) in samples
    info = next(labels for (name, labels) in samples if name == "sentiment_model_info")
    assert {"dtype": "float32", "device": "cpu", "model": "sentiment", "version": "1"}.items() <= dict(info).items()
    costs = {dict(labels)["term"]: value for (name, labels), value in samples.items()
             if name == "sentiment_batch_cost_seconds" and {"model": "sentiment", "version": "1"}.items() <= dict(labels).items()}
    assert set(costs) == {"fixed", "per_token", "per_token_width"} and all(v >= 0 for v in costs.values())


def test_every_call_returns_its_request_id_in_the_trailing_metadata_on_success_and_on_error(grpc_server):
    import grpc

    from sentiment.v1 import sentiment_pb2 as pb
    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

    with grpc.insecure_channel(grpc_server.target) as channel:
        stub = pb_grpc.SentimentServiceStub(channel)
        _, call = stub.Predict.with_call(pb.PredictRequest(text="good film"), metadata=(("x-request-id", "mine-1"),),
                                         timeout=10)
        assert ("x-request-id", "mine-1") in call.trailing_metadata()
        _, call = stub.Predict.with_call(pb.PredictRequest(text="good film"), timeout=10)
        made = dict(call.trailing_metadata())["x-request-id"]
        assert len(made) == 32 and int(made, 16) >= 0  # one made for the call: a uuid4, hex
        try:
            stub.Predict(pb.PredictRequest(text=""), metadata=(("x-request-id", "mine-2"),), timeout=10)
            raise AssertionError("an empty text must be refused")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            trailers = dict(error.trailing_metadata())
            assert trailers["x-request-id"] == "mine-2" and "grpc-status-details-bin" in trailers  # both kept
