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
from server.core.classifier import SequenceClassifier

from tests.support.helpers import (LABELS, MAX_TEXT_CHARS, Hold, ServerThread, gated_classifier, policy, read_port_file, server_process,
                           server_settings, wait_for)
from tests.support.bridge import BridgeThread


@pytest.fixture
def gated(tiny_model_dir):
    classifier, recorder = gated_classifier(tiny_model_dir)
    settings = server_settings(tiny_model_dir, max_batch_size=4)
    with ServerThread(settings, classifier, policy(settings, max_queue_size=8, warmup=False)) as server:
        yield server, recorder
        recorder.gate.set()


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


def _stall_the_server_loop_and_call(tiny_model_dir, classifier, max_queue_seconds: float, calls: int = 4) -> list[str]:
    """Stall the server's event loop for 3 s (the fault) while ``calls`` calls arrive: they wait in gRPC
    core, where no handler can refuse them."""
    with ServerThread(server_settings(tiny_model_dir, max_queue_seconds=max_queue_seconds, warmup=False), classifier) as server:
        with SentimentClient(server.target, timeout=30) as client:
            client.predict("warm the channel up")
            stalled = threading.Event()

            def stall():
                stalled.set()
                time.sleep(3)

            server.loop.call_soon_threadsafe(stall)
            assert stalled.wait(10)
            with ThreadPoolExecutor(calls) as pool:
                return list(pool.map(lambda i: _outcome(client.predict, f"good day {i}"), range(calls)))


def test_calls_held_in_grpc_core_past_the_time_bound_are_cancelled_not_served_late(tiny_model_dir, classifier):
    """grpc.aio takes calls from gRPC core one at a time; when the server cannot take them (here its event
    loop stalls for 3 s), the calls wait in core. Past --max-queue-seconds (1 s) core cancels them instead of
    handing them over late. (A call grpc.aio had already asked core for before the stall is not held in
    core, and may be served: the promise is about the held ones, so only CANCELLED or OK are allowed.)"""
    outcomes = _stall_the_server_loop_and_call(tiny_model_dir, classifier, max_queue_seconds=1)
    assert "CANCELLED" in outcomes and set(outcomes) <= {"OK", "CANCELLED"}, outcomes


def test_max_queue_seconds_0_turns_the_time_bound_off_so_held_calls_are_served_late(tiny_model_dir, classifier):
    """The contrast: with --max-queue-seconds 0 core holds the calls through the same stall and they are
    all served, late."""
    assert _stall_the_server_loop_and_call(tiny_model_dir, classifier, max_queue_seconds=0) == ["OK"] * 4


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


def test_sigkill_of_the_server_gives_503_then_bridge_and_clients_recover(tiny_model_dir, tmp_path):
    """The server is killed while the model holds a call (the test's gate): that call, and the job it
    belongs to, ride through the restart; the bridge answers 503 while the server is down and recovers."""
    hold = Hold(tmp_path)
    records: list[tuple[int, float, float, str]] = []  # (call, started, ended, outcome)
    progressed = threading.Event()

    with server_process(tiny_model_dir, tmp_path / "first.json", module="tests.support.gated_server", env=hold.env) as first:
        port = read_port_file(tmp_path / "first.json", first)["grpc"]
        target = f"127.0.0.1:{port}"

        finished = threading.Event()

        def batch_job():  # a job that must ride through the restart: waits for the server within its deadline
            with SentimentClient(target, timeout=120, wait_for_ready=True) as client:
                i = 0
                while not finished.is_set():  # calls one after another until the test has seen the restart
                    started = time.monotonic()
                    try:
                        client.predict(f"good film {i}")
                        outcome = "ok"
                    except SentimentError as error:
                        outcome = error.code
                    records.append((i, started, time.monotonic(), outcome))
                    i += 1
                    if i == 20:
                        progressed.set()

        with BridgeThread(target, timeout_seconds=30) as bridge:
            with SentimentClient(target) as client:
                client.wait_until_serving(timeout=120)
            job = threading.Thread(target=batch_job, daemon=True)  # never outlives a failed test
            job.start()
            assert progressed.wait(120)
            held_before = hold.forward_passes_held()
            hold.close()
            wait_for(lambda: hold.forward_passes_held() > held_before, what="a call held on the model")
            killed_at = time.monotonic()
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(30)
            hold.open()
            down = requests.post(f"{bridge.url}/predict", json={"text": "hello"}, timeout=25)
            assert down.status_code == 503 and down.json()["error"]["code"] == "UNAVAILABLE"
            assert requests.get(f"{bridge.url}/readyz", timeout=25).status_code == 503
            with server_process(tiny_model_dir, tmp_path / "second.json", port=port):
                wait_for(lambda: requests.get(f"{bridge.url}/readyz", timeout=5).status_code == 200, timeout=120,
                         what="bridge ready again")
                up = requests.post(f"{bridge.url}/predict", json={"text": "hello"}, timeout=25)
                assert up.status_code == 200
                after_restart = len(records)
                wait_for(lambda: len(records) >= after_restart + 20, timeout=120, what="the job's calls after the restart")
                finished.set()
                job.join(180)
    in_flight_at_kill = [i for i, started, ended, _ in records if started < killed_at < ended]
    assert len(in_flight_at_kill) == 1  # the held call was on the wire when the server died ...
    assert [outcome for *_, outcome in records] == ["ok"] * len(records)  # ... and it, like every other call, succeeded


TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXTS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(["text", "texts", "truncation", "return_logits", "x"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)


MAX_TEXTS, MAX_CHARS, MAX_TOKENS = 16, MAX_TEXT_CHARS, 64  # the test server's limits (tests/helpers.py, the tiny model)


def first_problem(texts: list[str], reject: bool, tokenizer) -> str | None:
    """The field a correct server names for this batch, from the documented rules alone; None when valid."""
    if not texts or len(texts) > MAX_TEXTS:
        return "texts"
    for index, text in enumerate(texts):
        if not text.strip() or len(text) > MAX_CHARS:
            return f"texts[{index}]"
    for index, text in enumerate(texts):
        if reject and len(tokenizer(text)["input_ids"]) > MAX_TOKENS:
            return f"texts[{index}]"
    return None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=0, max_size=20), reject=st.booleans())
def test_any_unicode_batch_is_answered_when_valid_and_refused_naming_the_field_when_not(grpc_server, classifier, texts, reject):
    """Valid batches (whatever their script) are answered, one prediction per text; invalid ones get
    INVALID_ARGUMENT naming the first bad field; the server stays up either way."""
    problem = first_problem(texts, reject, classifier.tokenizer.hf)
    with SentimentClient(grpc_server.target, timeout=30) as client:
        try:
            predictions = client.predict_batch(texts, truncation="reject" if reject else "truncate")
        except SentimentError as error:
            assert problem is not None, f"a valid batch was refused: {error}"
            assert (error.code, error.field) == ("INVALID_ARGUMENT", problem)
        else:
            assert problem is None, f"an invalid batch was answered ({problem})"
            assert len(predictions) == len(texts) and all(p.label in LABELS for p in predictions)
        assert client.health() == "SERVING"


NON_ASCII_TEXTS = st.text(alphabet=st.characters(min_codepoint=0x80, blacklist_categories=("Cs",)), min_size=1,
                          max_size=300).filter(lambda text: text.strip())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(NON_ASCII_TEXTS, min_size=1, max_size=MAX_TEXTS))
def test_valid_non_ascii_text_is_always_answered(grpc_server, fuzz_bridge, texts):
    """Any script, emoji, combining marks, right-to-left text: answered over gRPC and through the bridge."""
    with SentimentClient(grpc_server.target, timeout=30) as client:
        predictions = client.predict_batch(texts)
    assert [p.label in LABELS for p in predictions] == [True] * len(texts)
    response = requests.post(f"{fuzz_bridge}/predict", json={"texts": texts}, timeout=30)
    assert response.status_code == 200, response.text
    assert [p["label"] for p in response.json()["predictions"]] == [p.label for p in predictions]


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
    if _valid_single_text(body):  # the success branch: a valid body is always answered
        assert response.status_code == 200 and payload["label"] in LABELS, payload


def _valid_single_text(body) -> bool:
    return (isinstance(body, dict) and set(body) <= {"text", "x"} and isinstance(body.get("text"), str)
            and bool(body["text"].strip()) and len(body["text"]) <= MAX_CHARS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000), content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]))
def test_any_bytes_get_a_json_answer_never_a_500(fuzz_bridge, raw, content_type):
    response = requests.post(f"{fuzz_bridge}/predict", data=raw, headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code in (200, 400, 415, 422), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert requests.get(f"{fuzz_bridge}/healthz", timeout=10).status_code == 200
