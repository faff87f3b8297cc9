"""Each promise test must fail when its behaviour is broken. Not part of the suite (the file name is not
collected by default); run it by hand: ``python -m pytest -q tests/mutants/check_mutants.py``.

Each check breaks one behaviour in this process (monkeypatch) or flips the flag of a server process, runs
the promise test as a plain function, and passes only when that test fails."""

from __future__ import annotations

import numpy as np
import pytest

import rest_bridge.errors
import server.batching.queue
import server.core.inference
import server.transport.server
import server.transport.servicers
import server.engines.select
from clients.client import SentimentClient
from server.errors import InvalidInput
from tests import test_batcher, test_faults, test_processes, test_promises


def fails(test, *args, **kwargs) -> None:
    with pytest.raises((Exception, pytest.fail.Exception)):  # AssertionError, pytest.raises failing, or an error
        test(*args, **kwargs)


def test_scores_test_fails_without_normalisation(client, monkeypatch):
    monkeypatch.setattr(server.core.inference, "softmax", lambda logits: np.exp(logits))
    fails(test_promises.test_scores_are_the_softmax_of_the_logits, client)


def test_bridge_timeout_test_fails_when_the_bridge_ignores_its_budget(held_factory, monkeypatch):
    predict = SentimentClient.predict
    monkeypatch.setattr(SentimentClient, "predict", lambda self, text, **kw: predict(self, text, **{**kw, "timeout": 60}))
    fails(test_promises.test_bridge_timeout_seconds_bounds_a_call_to_a_slow_backend_with_504, held_factory())


def test_429_test_fails_when_resource_exhausted_maps_to_500(held_factory, monkeypatch):
    monkeypatch.setitem(rest_bridge.errors.HTTP_STATUS, "RESOURCE_EXHAUSTED", 500)
    fails(test_promises.test_backend_resource_exhausted_becomes_429_with_retry_after_through_the_bridge, held_factory())


def test_table_tests_fail_when_a_row_changes(aborting_bridge, monkeypatch):
    monkeypatch.setitem(rest_bridge.errors.HTTP_STATUS, "CANCELLED", 500)
    fails(test_promises.test_the_readme_error_table_is_the_code_table)
    fails(test_promises.test_every_row_of_the_error_table_through_the_bridge, aborting_bridge, "CANCELLED")


def test_stream_window_test_fails_without_a_window(tiny_model_dir, monkeypatch):
    init = server.transport.servicers.SentimentServicer.__init__
    monkeypatch.setattr(server.transport.servicers.SentimentServicer, "__init__", lambda self, core, window: init(self, core, 1000))
    fails(test_promises.test_stream_window_bounds_what_one_stream_puts_in_the_queue, tiny_model_dir)


def test_message_size_test_fails_without_the_limit(tiny_model_dir, classifier, monkeypatch):
    options = server.transport.server.transport_options
    monkeypatch.setattr(server.transport.server, "transport_options",
                        lambda settings: [o for o in options(settings) if "message_length" not in o[0]])
    fails(test_promises.test_max_message_bytes_refuses_a_larger_message_and_keeps_serving, tiny_model_dir, classifier)


def test_max_input_tokens_test_fails_when_the_setting_is_dropped(tiny_model_dir, monkeypatch):
    load = test_promises.load_classifier
    monkeypatch.setattr(test_promises, "load_classifier", lambda s: load(s.model_copy(update={"max_input_tokens": None})))
    fails(test_promises.test_max_input_tokens_cuts_texts_to_the_setting, tiny_model_dir)


def test_int8_test_fails_without_quantization(tiny_model_dir, classifier, monkeypatch):
    monkeypatch.setattr(server.engines.select, "quantize_int8", lambda model, calibration: model)
    fails(test_promises.test_dtype_int8_quantizes_the_linear_layers_and_serves_the_quantized_model, tiny_model_dir, classifier)


def test_batching_test_fails_without_length_neighbours(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(server.batching.queue, "LOOKAHEAD_BATCHES", 0)  # the worker then takes one text at a time
    fails(test_promises.test_concurrent_callers_are_batched_together, tiny_model_dir)


def test_queue_seconds_0_test_fails_when_0_still_bounds(monkeypatch):
    init = server.batching.queue.DynamicBatcher.__init__
    monkeypatch.setattr(server.batching.queue.DynamicBatcher, "__init__",
                        lambda self, run, **kw: init(self, run, **{**kw, "max_queue_seconds": kw.get("max_queue_seconds") or 5.0}))
    fails(test_batcher.test_time_bound_is_off_when_max_queue_seconds_is_0)


def test_property_tests_fail_when_non_ascii_text_is_refused(grpc_server, classifier, monkeypatch):
    validate = server.core.InferenceCore.validate

    def ascii_only(self, texts):
        validate(self, texts)
        for index, text in enumerate(texts):
            if not text.isascii():
                raise InvalidInput("non-ASCII", field=f"texts[{index}]")

    monkeypatch.setattr(server.core.InferenceCore, "validate", ascii_only)
    fails(test_faults.test_any_unicode_batch_is_answered_when_valid_and_refused_naming_the_field_when_not,
          grpc_server=grpc_server, classifier=classifier)


def _flip(monkeypatch, flag: str, value: str) -> None:
    held_server = test_processes.held_server

    def flipped(model_dir, tmp_path, *extra):
        extra = list(extra)
        extra[extra.index(flag) + 1] = value
        return held_server(model_dir, tmp_path, *extra)

    monkeypatch.setattr(test_processes, "held_server", flipped)


def test_lame_duck_test_fails_with_lame_duck_0(tiny_model_dir, tmp_path, monkeypatch):
    _flip(monkeypatch, "--lame-duck-seconds", "0")
    fails(test_processes.test_sigterm_says_not_serving_refuses_new_calls_finishes_held_ones_then_lame_duck,
          tiny_model_dir, tmp_path)


def test_grace_test_fails_when_the_grace_outlasts_the_held_call(tiny_model_dir, tmp_path, monkeypatch):
    _flip(monkeypatch, "--grace-seconds", "600")
    fails(test_processes.test_sigterm_cuts_off_calls_still_running_after_the_grace_period, tiny_model_dir, tmp_path)


@pytest.fixture
def held_factory(tiny_model_dir):
    """A server like test_promises' ``held`` fixture (its model waits for the test's gate), made on demand
    so that a check can patch things before the server starts."""
    import contextlib

    from tests.support.helpers import server_settings
    from tests.support.helpers import ServerThread

    with contextlib.ExitStack() as stack:
        def make():
            classifier = test_faults.GatedClassifier(tiny_model_dir)
            stack.callback(classifier.gate.set)
            settings = server_settings(tiny_model_dir, max_queue_size=8, max_batch_size=1, warmup=False)
            return stack.enter_context(ServerThread(settings, classifier)), classifier

        yield make


@pytest.fixture(scope="module")
def aborting_bridge():
    from concurrent import futures

    import grpc

    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
    from tests.support.bridge import BridgeThread

    backend = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_SentimentServiceServicer_to_server(test_promises.AbortingBackend(), backend)
    port = backend.add_insecure_port("127.0.0.1:0")
    backend.start()
    try:
        with BridgeThread(f"127.0.0.1:{port}") as bridge:
            yield bridge.url
    finally:
        backend.stop(0)
