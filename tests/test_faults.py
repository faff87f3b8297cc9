"""Overload, deadlines, a killed backend, and arbitrary input: all on loopback, bounded, self-stopping."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients import AsyncSentimentClient, SentimentClient, SentimentError
from server.model import SequenceClassifier
from tests.conftest import server_settings
from tests.helpers import Process, ServerThread, free_port, python_script, wait_for
from tests.test_bridge import BridgeThread


class GatedClassifier(SequenceClassifier):
    """The real tiny model, but each forward pass waits for the gate: the test decides when it is busy."""

    def __init__(self, model_dir):
        super().__init__(str(model_dir), device="cpu", dtype="float32")
        self.gate = threading.Event()
        self.gate.set()
        self.busy = threading.Event()
        self.seen: list[int] = []

    def forward(self, encodings):
        self.busy.set()
        self.gate.wait(30)
        self.seen.extend(e.num_tokens for e in encodings)
        return super().forward(encodings)


@pytest.fixture
def gated(tiny_model_dir):
    classifier = GatedClassifier(tiny_model_dir)
    with ServerThread(server_settings(tiny_model_dir, max_queue_size=8, max_batch_size=4, warmup=False), classifier) as server:
        yield server, classifier
        classifier.gate.set()


def test_overload_refuses_the_excess_at_once_and_serves_the_queue(gated):
    server, classifier = gated
    queue, extra = 8, 5

    async def run():
        async with AsyncSentimentClient(server.target, timeout=30) as client:
            classifier.gate.clear()
            classifier.busy.clear()
            first = asyncio.ensure_future(client.predict("good film"))
            await asyncio.get_running_loop().run_in_executor(None, classifier.busy.wait, 10)
            calls = [asyncio.ensure_future(client.predict(f"good day {i}")) for i in range(queue + extra)]
            done, pending = await asyncio.wait(calls, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            # the refusals come back while the model is still blocked: nothing waited for it
            while len(done) < extra:
                more, pending = await asyncio.wait(pending, timeout=20, return_when=asyncio.FIRST_COMPLETED)
                done |= more
            refused_early = [c for c in done if isinstance(c.exception(), SentimentError)]
            classifier.gate.set()
            results = await asyncio.gather(first, *calls, return_exceptions=True)
            return refused_early, results

    refused_early, results = asyncio.run(run())
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(refused_early) == extra
    assert [e.code for e in errors] == ["RESOURCE_EXHAUSTED"] * extra
    assert len(results) - len(errors) == queue + 1


def test_calls_held_in_grpc_core_past_the_time_bound_are_cancelled_not_served_late(tiny_model_dir, classifier):
    """grpc.aio takes calls from gRPC core one at a time; when the server cannot take them (here its event
    loop stalls for 3 s), the calls wait in core, where no handler can refuse them. Past
    --max-queue-seconds core cancels them instead of handing them over late."""
    calls = 4
    with ServerThread(server_settings(tiny_model_dir, max_queue_seconds=1, warmup=False), classifier) as server:
        with SentimentClient(server.target, timeout=30) as client:
            client.predict("warm the channel up")
            stalled = threading.Event()

            def stall():  # the fault: the server's event loop does not run for 3 s
                stalled.set()
                time.sleep(3)

            server.loop.call_soon_threadsafe(stall)
            assert stalled.wait(10)
            with ThreadPoolExecutor(calls) as pool:
                outcomes = list(pool.map(lambda i: _outcome(client.predict, f"good day {i}"), range(calls)))
    # one call matches the request grpc.aio had already made before the stall; the others wait in core
    assert sorted(outcomes) == ["CANCELLED"] * (calls - 1) + ["OK"], outcomes


def _outcome(call, *args) -> str:
    try:
        call(*args)
        return "OK"
    except SentimentError as error:
        return error.code


def test_bridge_refuses_past_its_concurrency_limit_with_429_at_once(gated):
    """Past --max-concurrent-requests the bridge answers 429 + Retry-After while the backend is still
    busy, instead of holding the caller in a queue; the calls in flight still succeed."""
    server, classifier = gated
    limit, extra = 2, 3
    with BridgeThread(server.target, max_concurrent_requests=limit) as bridge:
        classifier.gate.clear()
        classifier.busy.clear()
        results = {}

        def call(i):
            results[i] = requests.post(f"{bridge.url}/predict", json={"text": f"good day {i}"}, timeout=30)

        holders = [threading.Thread(target=call, args=(i,)) for i in range(limit)]
        holders[0].start()
        assert classifier.busy.wait(10)  # the first holds the model
        for thread in holders[1:]:
            thread.start()
        wait_for(lambda: server.running.core.batcher.queue_depth == limit - 1, timeout=10)  # the rest wait behind it
        refused = [requests.post(f"{bridge.url}/predict", json={"text": "one more"}, timeout=30) for _ in range(extra)]
        classifier.gate.set()
        for thread in holders:
            thread.join(30)
    assert [r.status_code for r in refused] == [429] * extra
    assert all(r.headers["Retry-After"] and r.json()["error"]["code"] == "RESOURCE_EXHAUSTED" for r in refused)
    assert [results[i].status_code for i in range(limit)] == [200] * limit


def test_a_call_past_its_deadline_ends_deadline_exceeded_and_is_never_run(gated):
    server, classifier = gated
    with SentimentClient(server.target, timeout=30) as client:
        classifier.gate.clear()
        classifier.busy.clear()
        blocker = threading.Thread(target=client.predict, args=("good",))
        blocker.start()
        classifier.busy.wait(10)
        with pytest.raises(SentimentError) as error:
            client.predict("the food was not very good but the service was great", timeout=0.2)
        assert error.value.code == "DEADLINE_EXCEEDED"
        classifier.gate.set()
        blocker.join(30)
        assert client.predict("okay").label  # the worker moved on past the expired call
    assert 13 not in classifier.seen  # the expired 13-token text never reached the model
    assert server.running.core.batcher.stats.dropped >= 1


def test_reflection_can_be_switched_off(tiny_model_dir, classifier):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with ServerThread(server_settings(tiny_model_dir, reflection=False), classifier) as server:
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as error:
                list(ProtoReflectionDescriptorDatabase(channel).get_services())
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_sigkill_of_the_server_gives_503_then_bridge_and_clients_recover(tiny_model_dir):
    port = free_port()
    args = python_script("server.app", "--model", str(tiny_model_dir), "--host", "127.0.0.1", "--port", str(port),
                         "--device", "cpu", "--metrics-port", "0")
    target = f"127.0.0.1:{port}"
    outcomes: list[str] = []
    progressed = threading.Event()

    def batch_job():  # a job that must ride through the restart: waits for the server within its deadline
        with SentimentClient(target, timeout=120, wait_for_ready=True) as client:
            for i in range(150):
                try:
                    client.predict(f"good film {i}")
                    outcomes.append("ok")
                except SentimentError as error:
                    outcomes.append(error.code)
                if i == 20:
                    progressed.set()

    with BridgeThread(target, timeout_seconds=30) as bridge:
        first = Process(args).__enter__()
        try:
            with SentimentClient(target) as client:
                client.wait_until_serving(timeout=120)
            job = threading.Thread(target=batch_job)
            job.start()
            assert progressed.wait(120)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(30)
            down = requests.post(f"{bridge.url}/predict", json={"text": "hello"}, timeout=25)
            assert down.status_code == 503 and down.json()["error"]["code"] == "UNAVAILABLE"
            assert requests.get(f"{bridge.url}/readyz", timeout=25).status_code == 503
            with Process(args):
                wait_for(lambda: requests.get(f"{bridge.url}/readyz", timeout=5).status_code == 200, timeout=120,
                         what="bridge ready again")
                up = requests.post(f"{bridge.url}/predict", json={"text": "hello"}, timeout=25)
                assert up.status_code == 200
                job.join(180)
        finally:
            first.__exit__(None, None, None)
    assert outcomes == ["ok"] * 150


TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXTS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(["text", "texts", "truncation", "return_logits", "x"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=0, max_size=20), reject=st.booleans())
def test_any_unicode_batch_gets_an_answer_or_invalid_argument(grpc_server, texts, reject):
    with SentimentClient(grpc_server.target, timeout=30) as client:
        try:
            predictions = client.predict_batch(texts, truncation="reject" if reject else "truncate")
        except SentimentError as error:
            assert error.code == "INVALID_ARGUMENT", error
        else:
            assert len(predictions) == len(texts)
        assert client.health() == "SERVING"


@pytest.fixture(scope="module")
def fuzz_bridge(grpc_server):
    with BridgeThread(grpc_server.target, max_body_bytes=64 * 1024) as running:
        yield running.url


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=JSON_VALUES)
def test_any_json_body_gets_200_or_a_documented_4xx_in_json(fuzz_bridge, body):
    response = requests.post(f"{fuzz_bridge}/predict", data=json.dumps(body), timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400, 413, 422), response.text
    payload = response.json()
    assert ("error" in payload) == (response.status_code != 200)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000), content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]))
def test_any_bytes_get_a_json_answer_never_a_500(fuzz_bridge, raw, content_type):
    response = requests.post(f"{fuzz_bridge}/predict", data=raw, headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code in (200, 400, 415, 422), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert requests.get(f"{fuzz_bridge}/healthz", timeout=10).status_code == 200
