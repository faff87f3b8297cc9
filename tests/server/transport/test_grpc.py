"""The gRPC server on a real loopback socket, called with the real client."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import AsyncSentimentClient, SentimentError
from tests.support.helpers import LABELS, MAX_TEXT_CHARS


def test_predict_returns_a_label_with_probabilities_for_every_class(client):
    prediction = client.predict("i love this movie")
    assert prediction.label in LABELS
    assert prediction.class_id == LABELS.index(prediction.label)
    assert list(prediction.scores) == LABELS
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert prediction.label == max(prediction.scores, key=prediction.scores.get)
    assert prediction.num_tokens == 6  # [CLS] i love this movie [SEP]
    assert prediction.truncated is False
    assert prediction.logits is None


def test_logits_only_when_asked_and_consistent_with_scores(client, classifier):
    prediction = client.predict("bad food", return_logits=True)
    assert len(prediction.logits) == len(LABELS)
    expected = classifier.predict_logits(["bad food"])[0]
    assert prediction.logits == pytest.approx(list(expected), abs=1e-4)


def test_batch_answers_in_input_order_and_matches_single_calls(client):
    texts = ["i love this", "i hate that film", "okay", "the service was terrible but the food was great"]
    batch = client.predict_batch(texts)
    assert [p.num_tokens for p in batch] == [client.predict(t).num_tokens for t in texts]
    for text, prediction in zip(texts, batch):
        single = client.predict(text)
        assert prediction.label == single.label
        assert prediction.scores == pytest.approx(single.scores, abs=1e-4)


def test_futures_answer_as_the_blocking_calls_do_without_waiting(client):
    """predict_future / predict_batch_future (what the bridge's shared calls use): the same answers, and
    a failure arrives as the future's SentimentError."""
    texts = ["i love this", "terrible film", "okay day"]
    single, batch = client.predict_future(texts[0], return_logits=True), client.predict_batch_future(texts)
    assert single.result(timeout=30).logits == pytest.approx(client.predict(texts[0], return_logits=True).logits, abs=1e-4)
    assert [p.label for p in batch.result(timeout=30)] == [p.label for p in client.predict_batch(texts)]
    failed = client.predict_future("")
    assert isinstance(failed.exception(timeout=30), SentimentError)
    assert failed.exception().code == "INVALID_ARGUMENT"


def test_long_text_is_truncated_by_default_and_rejected_on_request(client):
    long_text = "good " * 200  # the tiny model takes 64 tokens
    prediction = client.predict(long_text)
    assert prediction.truncated is True
    assert prediction.num_tokens == 64
    with pytest.raises(SentimentError) as error:
        client.predict(long_text, truncation="reject")
    assert error.value.code == "INVALID_ARGUMENT"
    assert "64" in error.value.message


@pytest.mark.parametrize("texts, field", [
    ([""], "texts[0]"),
    (["fine", "   "], "texts[1]"),
    (["x" * (MAX_TEXT_CHARS + 1)], "texts[0]"),
    ([], "texts"),
    (["a"] * 17, "texts"),
])
def test_bad_batches_get_invalid_argument_naming_the_field(client, texts, field):
    with pytest.raises(SentimentError) as error:
        client.predict_batch(texts)
    assert error.value.code == "INVALID_ARGUMENT"
    assert error.value.field == field


def test_empty_single_text_is_invalid_argument(client):
    with pytest.raises(SentimentError) as error:
        client.predict("")
    assert error.value.code == "INVALID_ARGUMENT"


def test_stream_echoes_ids_and_reports_bad_items_without_ending_the_stream(client):
    items = [(f"id-{i}", "i love this" if i % 7 else "") for i in range(50)]
    results = list(client.stream(items))
    assert sorted(r.id for r in results) == sorted(i for i, _ in items)
    by_id = {r.id: r for r in results}
    for item_id, text in items:
        result = by_id[item_id]
        if text:
            assert result.prediction is not None and result.prediction.label in LABELS
        else:
            assert result.prediction is None and result.error_code == "INVALID_ARGUMENT"


def test_stream_keeps_many_texts_in_flight(grpc_server):
    """Thousands of texts on one stream: all answered once. (That the server reads no faster than it serves
    is held by tests/system/test_promises.py::test_stream_window_bounds_what_one_stream_puts_in_the_queue.)"""
    async def run():
        async with AsyncSentimentClient(grpc_server.target) as client:
            return [r async for r in client.stream([f"good day {i}" for i in range(2000)])]

    results = asyncio.run(run())
    assert sorted(int(r.id) for r in results) == list(range(2000))
    assert all(r.prediction for r in results)


def test_model_info_describes_the_loaded_model(client, tiny_model_dir, classifier):
    info = client.model_info()
    assert info.labels == LABELS
    assert info.model_source == str(tiny_model_dir)
    assert info.weights_sha256 == classifier.weights_sha256 and len(info.weights_sha256) == 64
    assert info.max_input_tokens == 64
    assert (info.device, info.dtype) == ("cpu", "float32")
    assert info.max_batch_size == 32 and info.max_batch_texts == 16 and info.max_queue_size == 512
    assert info.server_version


def test_health_reports_serving_for_the_server_and_the_service(client, grpc_server):
    assert client.health() == "SERVING"
    assert client.health(service="") == "SERVING"
    with grpc.insecure_channel(grpc_server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services_and_resolves_the_contract(grpc_server):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(grpc_server.target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"sentiment.v1.SentimentService", "grpc.health.v1.Health"} <= services
        service = DescriptorPool(database).FindServiceByName("sentiment.v1.SentimentService")
        assert {m.name for m in service.methods} == {"Predict", "PredictBatch", "PredictStream", "GetModelInfo", "Explain",
                                                    "ListModels"}


def test_async_client_predicts_batches_and_reads_info(grpc_server):
    async def run():
        async with AsyncSentimentClient(grpc_server.target) as client:
            single, batch, info, health = await asyncio.gather(
                client.predict("i love this"), client.predict_batch(["good", "bad"]), client.model_info(),
                client.health())
            with pytest.raises(SentimentError) as error:
                await client.predict("")
            return single, batch, info, health, error.value.code

    single, batch, info, health, code = asyncio.run(run())
    assert single.label in LABELS and len(batch) == 2 and info.labels == LABELS
    assert health == "SERVING" and code == "INVALID_ARGUMENT"
