"""One-text /predict requests of a bridge worker share PredictBatch calls (rest_bridge/coalesce.py): who
leaves with whom, and that every caller still gets the answer (or the error) its own text earns."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
import requests

from clients import SentimentClient
from clients.errors import SentimentError
from rest_bridge.coalesce import Coalescer
from tests.support.helpers import Hold, read_port_file, server_process, wait_for

PLAIN = (("truncation", None),)
OTHER = (("truncation", "reject"),)


class Backend:
    """A PredictBatch stand-in: records each call, answers each text with itself (upper-cased), fails
    calls as told; while held, its calls stay out until ``release``."""

    def __init__(self, fail: str | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail
        self._held: list | None = None
        self._lock = threading.Lock()

    def hold(self):
        self._held = []

    def release(self):
        with self._lock:
            held, self._held = self._held, None
        for texts, future in held:
            self._answer(texts, future)

    def send(self, texts, options, timeout, request_id):
        future = Future()
        with self._lock:
            self.calls.append(list(texts))
            if self._held is not None:
                self._held.append((texts, future))
                return future
        self._answer(texts, future)
        return future

    def _answer(self, texts, future):
        if self.fail and any(t.startswith("bad") for t in texts):
            future.set_exception(SentimentError(self.fail, "a text this backend refuses"))
        elif any(t == "boom" for t in texts):
            future.set_exception(RuntimeError("connection reset"))
        else:
            future.set_result([t.upper() for t in texts])


class Caller(threading.Thread):
    def __init__(self, coalescer, text, options=PLAIN, timeout=10.0):
        super().__init__(daemon=True)
        self.args_ = (coalescer, text, options, timeout)
        self.answer = self.error = None
        self.start()

    def run(self):
        coalescer, text, options, timeout = self.args_
        try:
            self.answer = coalescer.predict(text, options, timeout, request_id=text)
        except SentimentError as error:
            self.error = error

    def result(self):
        self.join(10)
        assert not self.is_alive()
        return self.answer if self.error is None else self.error.code


def hold_one_call(backend, coalescer):
    """Hold the backend and send one request: the only call allowed out is then held there."""
    backend.hold()
    first = Caller(coalescer, "first")
    wait_for(lambda: len(backend.calls) == 1, what="the first call")
    return first


def queue_behind(coalescer, texts, options=PLAIN, timeout=10.0):
    """Send these requests one after another, each once the one before it waits for a call."""
    callers = []
    for text in texts:
        already = coalescer.waiting
        callers.append(Caller(coalescer, text, options, timeout))
        wait_for(lambda: coalescer.waiting == already + 1, what=f"{text!r} waiting")
    return callers


def test_a_lone_request_leaves_at_once_in_a_call_of_its_own():
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=2)
    assert coalescer.predict("good film", PLAIN, 5.0) == "GOOD FILM"
    assert backend.calls == [["good film"]]


def test_requests_that_arrive_while_the_calls_are_out_leave_together_and_each_gets_its_own_answer():
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    waiting = queue_behind(coalescer, [f"text {i}" for i in range(6)])
    assert len(backend.calls) == 1  # nothing else left while the one call was out
    backend.release()
    assert first.result() == "FIRST"
    assert [c.result() for c in waiting] == [f"TEXT {i}" for i in range(6)]
    assert len(backend.calls) == 2 and sorted(backend.calls[1]) == [f"text {i}" for i in range(6)]


def test_a_call_carries_at_most_max_texts_and_a_full_one_leaves_at_once_while_every_call_is_out():
    """Under overload the calls out may all wait in the server's queue: requests that fill a call do not
    wait behind them."""
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=2, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    callers = queue_behind(coalescer, ["t0"])
    callers.append(Caller(coalescer, "t1"))  # the second waiting request fills a call
    wait_for(lambda: len(backend.calls) == 2, what="the full call")
    assert coalescer.waiting == 0 and backend.calls[1] == ["t0", "t1"]
    callers += queue_behind(coalescer, ["t2"])
    assert len(backend.calls) == 2  # one request is not a full call: it waits for a call to come back
    backend.release()
    assert first.result() == "FIRST" and [c.result() for c in callers] == ["T0", "T1", "T2"]
    assert [len(call) for call in backend.calls] == [1, 2, 1]


def test_only_requests_with_the_same_options_share_a_call():
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    plain = queue_behind(coalescer, ["plain 0", "plain 1"])
    (other,) = queue_behind(coalescer, ["strict"], OTHER)
    plain += queue_behind(coalescer, ["plain 2"])
    backend.release()
    assert [c.result() for c in (first, *plain, other)] == ["FIRST", "PLAIN 0", "PLAIN 1", "PLAIN 2", "STRICT"]
    assert sorted(backend.calls[1]) == ["plain 0", "plain 1", "plain 2"] and backend.calls[2] == ["strict"]


def test_a_call_refused_for_one_text_is_sent_again_text_by_text():
    """INVALID_ARGUMENT may be one text's own fault: nobody else pays for it."""
    backend = Backend(fail="INVALID_ARGUMENT")
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    waiting = queue_behind(coalescer, ["good one", "bad one", "good two"])
    backend.release()
    assert first.result() == "FIRST"
    assert [c.result() for c in waiting] == ["GOOD ONE", "INVALID_ARGUMENT", "GOOD TWO"]
    assert sorted(backend.calls[1]) == ["bad one", "good one", "good two"]  # the shared call, then one each
    assert sorted(map(tuple, backend.calls[2:])) == [("bad one",), ("good one",), ("good two",)]


def test_overload_is_every_requests_answer_and_nothing_is_sent_again():
    backend = Backend(fail="RESOURCE_EXHAUSTED")
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    waiting = queue_behind(coalescer, ["bad one", "good one"])
    backend.release()
    assert first.result() == "FIRST"
    assert [c.result() for c in waiting] == ["RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]
    assert len(backend.calls) == 2


def test_a_broken_call_fails_its_requests_and_the_next_ones_still_go():
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    assert Caller(coalescer, "boom").result() == "INTERNAL"
    assert coalescer.predict("after", PLAIN, 5.0) == "AFTER"


def test_a_request_whose_deadline_passes_while_it_waits_is_answered_and_never_sent():
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    first = hold_one_call(backend, coalescer)
    late = Caller(coalescer, "late", timeout=0.05)
    assert late.result() == "DEADLINE_EXCEEDED"  # while the only call is still held
    assert coalescer.waiting == 0
    backend.release()
    assert first.result() == "FIRST"
    assert coalescer.predict("next", PLAIN, 5.0) == "NEXT"
    assert ["late"] not in backend.calls and all("late" not in call for call in backend.calls)


def test_a_request_whose_deadline_passes_during_its_call_is_answered_then_and_the_call_goes_on():
    """No request waits past its own deadline for a call, even the one that started it."""
    backend = Backend()
    coalescer = Coalescer(backend.send, max_texts=32, max_in_flight=1)
    backend.hold()
    short = Caller(coalescer, "short", timeout=0.05)
    wait_for(lambda: len(backend.calls) == 1, what="the short request's call")
    assert short.result() == "DEADLINE_EXCEEDED"  # its call is still held at the backend
    (patient,) = queue_behind(coalescer, ["patient"])
    backend.release()
    assert patient.result() == "PATIENT" and backend.calls == [["short"], ["patient"]]


def test_the_bridge_shares_calls_and_answers_each_request_as_a_call_of_its_own(tiny_model_dir, tmp_path):
    """A real bridge and a real server whose model the test holds: requests that arrive while the
    bridge's one call is out leave together (one call per set of options), and each answer equals what
    the server gives that text on its own; a text the server refuses gets its own 400 and the others of
    its call their answers."""
    from tests.support.bridge import BridgeThread

    hold = Hold(tmp_path)
    long_text = "good " * 300  # over the tiny model's 64 tokens: refused under truncation "reject"
    plain = ["i love this", "terrible film", "okay day"]
    strict = ["what a great story", long_text, "boring"]
    with server_process(tiny_model_dir, tmp_path / "port.json", module="tests.support.gated_server", env=hold.env) as server:
        target = f"127.0.0.1:{read_port_file(tmp_path / 'port.json', server)['grpc']}"
        with SentimentClient(target) as client:
            client.wait_until_serving(timeout=120)  # listening is not serving: the warm-up runs first
            alone = {t: client.predict(t, return_logits=True) for t in plain + strict if t != long_text}
        with BridgeThread(target, coalesce_calls=1) as bridge:
            coalescer = bridge.backend.coalescer
            answers: dict[str, list] = {t: [] for t in ["first", *plain, *strict]}

            def post(text, **options):
                answers[text].append(requests.post(f"{bridge.url}/predict", json={"text": text, "return_logits": True,
                                                                                  **options}, timeout=30))
            hold.close()
            threads = [threading.Thread(target=post, args=("first",))]
            threads[0].start()
            wait_for(lambda: hold.forward_passes_held() >= 1, what="the first call held in the model")
            threads += [threading.Thread(target=post, args=(t,)) for t in plain]
            threads += [threading.Thread(target=post, args=(t,), kwargs={"truncation": "reject"}) for t in strict]
            for thread in threads[1:]:
                thread.start()
            wait_for(lambda: coalescer.waiting == len(plain) + len(strict), what="every request waiting for the call")
            hold.open()
            for thread in threads:
                thread.join(30)
            metrics = requests.get(f"{bridge.url}/metrics", timeout=10).text
    assert answers["first"][0].status_code == 200
    for text in plain + strict:
        (response,) = answers[text]
        if text == long_text:
            assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_ARGUMENT"
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == alone[text].label
        assert body["logits"] == pytest.approx(alone[text].logits, abs=1e-4)
    # shared calls: the first alone, then one per set of options (the refused one's texts went again alone)
    assert "sentiment_bridge_shared_call_texts_count 3.0" in metrics
    assert f"sentiment_bridge_shared_call_texts_sum {1 + len(plain) + len(strict)}.0" in metrics


def test_coalesce_calls_0_sends_every_one_text_request_as_its_own_predict(tiny_model_dir):
    """--coalesce-calls 0: requests that arrive while others are out (the test holds the model) each reach the
    server as a Predict of their own; nothing is shared (no PredictBatch, and the bridge's
    sentiment_bridge_shared_call_texts stays empty)."""
    from tests.support.bridge import BridgeThread
    from tests.support.helpers import ServerThread, gated_classifier, metric_samples, policy, server_settings

    model, recorder = gated_classifier(tiny_model_dir)
    settings = server_settings(tiny_model_dir, max_queue_seconds=0)  # requests queued behind the hold stay queued
    with ServerThread(settings, model, policy(settings, warmup=False)) as server, \
            BridgeThread(server.target, coalesce_calls=0) as bridge:
        assert bridge.backend.coalescer is None
        statuses: list[int] = []

        def post(text):
            statuses.append(requests.post(f"{bridge.url}/predict", json={"text": text}, timeout=60).status_code)

        recorder.gate.clear()
        threads = [threading.Thread(target=post, args=("first",))]
        try:
            threads[0].start()
            wait_for(recorder.busy.is_set, what="the first request on the model")
            threads += [threading.Thread(target=post, args=(f"text {i}",)) for i in range(4)]
            for thread in threads[1:]:
                thread.start()
            wait_for(lambda: server.running.core.batcher.queue_depth == 4, what="four calls queued at the server")
        finally:
            recorder.gate.set()
        for thread in threads:
            thread.join(60)
        server_calls = metric_samples(requests.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics",
                                                   timeout=10).text)
        bridge_metrics = metric_samples(requests.get(f"{bridge.url}/metrics", timeout=10).text)
    assert statuses == [200] * 5
    calls = {labels: value for (name, labels), value in server_calls.items()
             if name == "sentiment_grpc_requests_total" and dict(labels)["method"] in ("Predict", "PredictBatch")}
    assert calls == {(("code", "OK"), ("method", "Predict")): 5}
    assert bridge_metrics[("sentiment_bridge_shared_call_texts_count", ())] == 0
