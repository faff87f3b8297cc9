"""Loading, swapping and unloading model versions while the server serves, over real sockets: the server on a
repository of tiny models with different seeds (each version's answers are its own), called by the real
clients while the test changes the repository."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent import futures

import grpc
import pytest

from clients import SentimentClient, SentimentError
from clients.oip import InferenceClient
from tests.support.helpers import build_tiny_model, wait_for
from tests.support.repository import (PROBE_TEXT, ModelGates, build_repository, copy_version, publish,
                                      reference_logits, repository_server, which)

CALLERS = 32


class Callers:
    """``count`` threads calling the default model without pause, each call recorded as (sent, answered, the
    version that answered or the error code)."""

    def __init__(self, target: str, references: dict[str, list[float]], count: int = CALLERS, **call):
        self.target, self.references, self.call = target, references, call
        self.calls: list[tuple[float, float, str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        with SentimentClient(self.target, timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    answer = which(client.predict(PROBE_TEXT, return_logits=True, **self.call).logits, self.references)
                except SentimentError as error:
                    answer = f"failed: {error.code}"
                self.calls.append((sent, time.monotonic(), answer))

    def __enter__(self) -> "Callers":
        for thread in self.threads:
            thread.start()
        return self

    def answered_since(self, moment: float) -> int:
        return sum(1 for _, done, _ in list(self.calls) if done > moment)

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


@pytest.fixture
def spare(tmp_path):
    """Models outside the repository, to copy in while the server runs."""
    return {"sentiment-2": build_tiny_model(tmp_path / "spare" / "sentiment-2", seed=12),
            "reviews-1": build_tiny_model(tmp_path / "spare" / "reviews-1", seed=13)}


def index_of(repository: InferenceClient) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e.name, e.version): (e.state, e.reason) for e in repository.repository_index()}


def test_a_second_model_and_a_new_version_load_while_32_callers_call_the_first_and_none_fails(tmp_path, spare):
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    references = {"1": reference_logits(root / "sentiment" / "1"), "2": reference_logits(spare["sentiment-2"])}
    with repository_server(root) as server, SentimentClient(server.target, timeout=120) as client:
        repository = InferenceClient(client)
        with Callers(server.target, references) as callers:
            wait_for(lambda: callers.answered_since(0) >= 200, what="calls answered before the loads")
            copy_version(spare["reviews-1"], root / "reviews", 1)
            repository.load_model("reviews")
            copy_version(spare["sentiment-2"], root / "sentiment", 2)
            swap_started = time.monotonic()
            repository.load_model("sentiment")
            swapped = time.monotonic()
            wait_for(lambda: callers.answered_since(swapped) >= 200, what="calls answered after the swap")
        reviews = client.predict(PROBE_TEXT, return_logits=True, model="reviews").logits
        wait_for(lambda: index_of(repository)[("sentiment", "1")][0] == "UNAVAILABLE", what="version 1 unloaded")
        listed = [(m.name, m.version, m.state) for m in client.list_models()]
    counts = Counter(answer for _, _, answer in callers.calls)
    print(f"\nlive reload: {len(callers.calls)} calls by {CALLERS} callers, answered by version: {dict(counts)}")
    assert set(counts) == {"1", "2"}, counts  # no call failed, every answer is one of the two versions'
    # an answer of version 1 came from a call admitted before version 2 took over (the switch is before the load
    # returns); version 2 answered only calls that ended after its load began
    assert all(sent < swapped for sent, _, answer in callers.calls if answer == "1")
    assert all(done > swap_started for _, done, answer in callers.calls if answer == "2")
    assert reviews == pytest.approx(reference_logits(spare["reviews-1"]), abs=1e-4)
    assert listed == [("sentiment", "2", "READY"), ("reviews", "1", "READY")]


def test_a_new_version_takes_no_call_until_it_is_warm(tmp_path, spare, monkeypatch):
    gates = ModelGates()
    gates.install(monkeypatch)
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    references = {"1": reference_logits(root / "sentiment" / "1"), "2": reference_logits(spare["sentiment-2"])}
    warm_up = gates.hold(root / "sentiment" / "2")
    with repository_server(root) as server, SentimentClient(server.target, timeout=60) as client:
        repository = InferenceClient(client)
        copy_version(spare["sentiment-2"], root / "sentiment", 2)
        loading = threading.Thread(target=repository.load_model, args=("sentiment",), kwargs={"timeout": 120})
        loading.start()
        try:
            wait_for(lambda: gates.passes[str(root / "sentiment" / "2")] >= 1, what="version 2 warming up")
            assert index_of(repository)[("sentiment", "2")] == ("LOADING", "")
            answers = {which(client.predict(PROBE_TEXT, return_logits=True, timeout=5).logits, references)
                       for _ in range(20)}
            assert answers == {"1"}  # warming up, version 2 answers nothing
        finally:
            warm_up.set()
        loading.join(60)
        assert which(client.predict(PROBE_TEXT, return_logits=True).logits, references) == "2"


def test_unloading_a_version_with_calls_queued_lets_them_finish(tmp_path, spare, monkeypatch):
    gates = ModelGates()
    gates.install(monkeypatch)
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    reviews = root / "reviews" / "1"
    gate = gates.hold(reviews)
    gate.set()  # open while it loads and warms up
    with repository_server(root) as server, SentimentClient(server.target, timeout=60) as client:
        repository = InferenceClient(client)
        copy_version(spare["reviews-1"], root / "reviews", 1)
        repository.load_model("reviews")
        gate.clear()
        before = gates.passes[str(reviews)]
        queued = [client.predict_future(f"call {i}", model="reviews") for i in range(6)]
        wait_for(lambda: gates.passes[str(reviews)] > before, what="a batch of reviews held on the model")
        wait_for(lambda: server.running.manager.version_of("reviews", "").core.calls == 6, what="six calls admitted")
        repository.unload_model("reviews")
        assert index_of(repository)[("reviews", "1")] == ("UNLOADING", "finishing the calls it admitted")
        with pytest.raises(SentimentError) as refused:
            client.predict("a new call", model="reviews")
        assert refused.value.code == "NOT_FOUND"
        assert not any(call.done() for call in queued)
        gate.set()
        finished, _ = futures.wait(queued, timeout=30)
        assert len(finished) == 6 and [call.exception() for call in queued] == [None] * 6  # all answered, on it
        wait_for(lambda: index_of(repository)[("reviews", "1")] == ("UNAVAILABLE", "unloaded"), what="unloaded")
        assert [m.name for m in client.list_models()] == ["sentiment"]


def test_a_version_that_cannot_load_changes_nothing_and_says_why(tmp_path, spare):
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    references = {"1": reference_logits(root / "sentiment" / "1")}
    with repository_server(root) as server, SentimentClient(server.target, timeout=60) as client:
        repository = InferenceClient(client)
        broken = root / "sentiment" / "2"
        broken.mkdir()
        (broken / "config.json").write_text('{"model_type": "bert", "num_labels": 3')  # cut short
        (broken / "model.safetensors").write_bytes(b"\x00" * 16)
        with Callers(server.target, references, count=4) as callers:
            with pytest.raises(SentimentError) as failed:
                repository.load_model("sentiment")
            assert failed.value.code == "FAILED_PRECONDITION"
            assert "version 2 of 'sentiment' could not load from" in failed.value.message
            assert "the versions being served are unchanged" in failed.value.message
            state, reason = index_of(repository)[("sentiment", "2")]
            assert state == "UNAVAILABLE" and "could not load" in reason
            # a new version with another head (two labels where version 1 has three) is refused too
            publish(root / "sentiment", 3, seed=5, labels=["bad", "good"])
            with pytest.raises(SentimentError) as other_head:
                repository.load_model("sentiment")
            assert other_head.value.code == "FAILED_PRECONDITION" and "different head" in other_head.value.message
            moment = time.monotonic()
            wait_for(lambda: callers.answered_since(moment) >= 20, what="calls answered after the failed loads")
        assert {answer for *_, answer in callers.calls} == {"1"}
        assert [(m.name, m.version) for m in client.list_models()] == [("sentiment", "1")]


def test_a_load_past_the_memory_budget_is_refused_and_the_served_models_stay(tmp_path, spare):
    from server.repository import memory

    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    one = memory.estimate_bytes(str(root / "sentiment" / "1"), engine="torch", dtype="float32", cuda=False,
                                explains=True, max_batch_tokens=8192)
    budget_mb = one // 2**20 + 1  # room for one version, not two
    with repository_server(root, model_memory_mb=budget_mb) as server, SentimentClient(server.target) as client:
        repository = InferenceClient(client)
        copy_version(spare["reviews-1"], root / "reviews", 1)
        with pytest.raises(SentimentError) as refused:
            repository.load_model("reviews")
        assert refused.value.code == "FAILED_PRECONDITION"
        assert f"of the {budget_mb} MiB budget (--model-memory-mb)" in refused.value.message
        assert client.model_info().estimated_memory_bytes == one
        assert client.predict("still serving").label
        assert [m.name for m in client.list_models()] == ["sentiment"]


def test_a_pinned_version_policy_keeps_its_version_and_latest_moves_on(tmp_path, spare):
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    references = {"1": reference_logits(root / "sentiment" / "1"), "2": reference_logits(spare["sentiment-2"])}
    (root / "sentiment" / "version_policy.json").write_text('{"specific": {"versions": [1]}}')
    with repository_server(root) as server, SentimentClient(server.target, timeout=60) as client:
        repository = InferenceClient(client)
        copy_version(spare["sentiment-2"], root / "sentiment", 2)
        repository.load_model("sentiment")
        assert which(client.predict(PROBE_TEXT, return_logits=True).logits, references) == "1"
        assert "pinned to version 1" in index_of(repository)[("sentiment", "2")][1]
        (root / "sentiment" / "version_policy.json").write_text('{"all": {}}')
        repository.load_model("sentiment")
        assert which(client.predict(PROBE_TEXT, return_logits=True).logits, references) == "2"  # the highest
        assert which(client.predict(PROBE_TEXT, return_logits=True, model_version="1").logits, references) == "1"


def test_requests_route_by_model_and_version_and_others_are_not_found(tmp_path, spare):
    from sentiment.oip import grpc_predict_v2_pb2 as oip
    from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc

    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}, "reviews": {4: 13}})
    with repository_server(root) as server, SentimentClient(server.target) as client:
        info = client.model_info(model="reviews")
        assert (info.name, info.version, info.model_source) == ("reviews", "4", str(root / "reviews" / "4"))
        assert client.model_info().name == "reviews"  # the default: the repository's first model by name
        for call in ({"model": "nope"}, {"model": "reviews", "model_version": "1"}, {"model_version": "9"}):
            with pytest.raises(SentimentError) as missing:
                client.predict("good", **call)
            assert missing.value.code == "NOT_FOUND", call
        assert client.explain("good film", model="sentiment", steps=4).words
        with grpc.insecure_channel(server.target) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            metadata = stub.ModelMetadata(oip.ModelMetadataRequest(name="sentiment"), timeout=10)
            assert list(metadata.versions) == ["1"]
            reply = stub.ModelInfer(oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
                name="text", datatype="BYTES", shape=[1], contents=oip.InferTensorContents(bytes_contents=[b"good"]))]),
                timeout=10)
            assert (reply.model_name, reply.model_version) == ("sentiment", "1")
            assert stub.ModelReady(oip.ModelReadyRequest(name="reviews", version="4"), timeout=10).ready
            assert "model_repository" in stub.ServerMetadata(oip.ServerMetadataRequest(), timeout=10).extensions
        with pytest.raises(SentimentError) as refused:
            InferenceClient(client).unload_model("reviews")  # the default model
        assert refused.value.code == "FAILED_PRECONDITION" and "default model" in refused.value.message
