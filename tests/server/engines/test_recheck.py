"""int8 with its close calls re-checked in float32 (server/engines/recheck.py): which rows are close for each
kind of head, that exactly those run again and take the float32 answer, how the margin is measured, that
auto offers it, and that the server reports it."""

from __future__ import annotations

import numpy as np
import pytest

from server.engines import Engine, heads, recheck, select
from server.engines.recheck import RecheckedEngine, decision_errors, decision_margins, measured_margin
from server.core.classifier import SequenceClassifier
from tests.support.helpers import build_tiny_model

TEXTS = ["i love this", "bad film", "okay day", "the food was not very good but the service was great " * 3,
         "awful", "fine", "happy day", "not sad"]


def test_a_single_label_answer_is_as_close_as_its_runner_up():
    logits = np.array([[2.0, 1.9, -3.0], [0.0, 5.0, 1.0], [-1.0, -1.0, -1.0]], dtype=np.float32)
    assert decision_margins(logits, heads.SINGLE_LABEL) == pytest.approx([0.1, 4.0, 0.0])


def test_a_multi_label_answer_is_also_as_close_as_any_label_to_the_threshold():
    # the third label at -0.05 is 0.05 from a sigmoid of 0.5: predicting it or not can flip
    logits = np.array([[3.0, 1.0, -0.05], [4.0, -2.0, -3.0]], dtype=np.float32)
    assert decision_margins(logits, heads.MULTI_LABEL) == pytest.approx([0.05, 2.0])


def test_a_regression_answer_never_counts_as_close():
    assert np.isinf(decision_margins(np.array([[0.0], [1e-9]]), heads.REGRESSION)).all()


def test_the_margin_is_a_multiple_of_the_mean_error_quantization_made_on_a_gap():
    exact = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    fast = exact + np.array([[0.1, 0.0, 0.0], [0.0, 0.0, 0.3]])  # gaps moved by at most 0.1, then 0.3
    assert decision_errors(fast, exact, heads.SINGLE_LABEL) == pytest.approx([0.1, 0.3])
    assert measured_margin(fast, exact, heads.SINGLE_LABEL) == pytest.approx(recheck.RECHECK_FACTOR * 0.2)
    shifted = exact + 0.4  # every logit moved alike: no gap changed, but each moved towards a threshold
    assert measured_margin(shifted, exact, heads.SINGLE_LABEL) == pytest.approx(0.0)
    assert measured_margin(shifted, exact, heads.MULTI_LABEL) == pytest.approx(recheck.RECHECK_FACTOR * 0.4)


class Recorded(Engine):
    """An engine whose answers are given; it records the batches it ran."""

    device = "cpu"

    def __init__(self, name: str, answer):
        self.name, self.dtype, self.answer, self.calls = name, name, answer, []

    def run(self, input_ids, attention_mask):
        self.calls.append((input_ids.copy(), attention_mask.copy()))
        return self.answer(input_ids)


def test_only_the_close_rows_run_again_and_take_the_float32_answer():
    fast_logits = np.array([[3.0, 0.0, 0.0], [1.0, 0.9, 0.0], [0.0, 0.0, 2.0], [0.5, 0.45, 0.0]], dtype=np.float32)
    fast = Recorded("int8", lambda ids: fast_logits.copy())
    exact = Recorded("float32", lambda ids: np.full((len(ids), 3), 7.0, dtype=np.float32))
    engine = RecheckedEngine(fast, exact, margin=0.2, problem_type=heads.SINGLE_LABEL)
    ids = np.arange(4 * 6, dtype=np.int64).reshape(4, 6)
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0], [1] * 6, [1, 1, 0, 0, 0, 0]], dtype=np.int64)
    logits = engine.run(ids, mask)
    assert logits[[0, 2]].tolist() == fast_logits[[0, 2]].tolist()  # clear answers: int8's, untouched
    assert logits[[1, 3]].tolist() == [[7.0] * 3] * 2  # close ones: float32's
    ((rerun_ids, rerun_mask),) = exact.calls
    assert rerun_ids.tolist() == ids[[1, 3], :3].tolist()  # those rows only, cut to their longest real length
    assert rerun_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert engine.counts() == (4, 2)
    assert (engine.name, engine.dtype) == ("int8", "int8")


def test_a_batch_with_no_close_call_runs_once():
    fast = Recorded("int8", lambda ids: np.tile([5.0, 0.0, 0.0], (len(ids), 1)).astype(np.float32))
    exact = Recorded("float32", lambda ids: pytest.fail("nothing was close"))
    engine = RecheckedEngine(fast, exact, margin=1.0, problem_type=heads.SINGLE_LABEL)
    ids = np.ones((3, 4), dtype=np.int64)
    engine.run(ids, ids)
    assert engine.counts() == (3, 0) and len(fast.calls) == 1


@pytest.fixture
def engine_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_MODEL_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_int8_answers_are_float32_answers_wherever_int8_was_close(tiny_model_dir, classifier, engine_cache, engine):
    """On a real model: every row is either int8's own answer with a clear gap, or exactly float32's."""
    int8 = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine=engine)
    plain = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine=engine, recheck_margin=0)
    served = int8.engine
    assert isinstance(served, RecheckedEngine) and served.margin > 0
    assert not isinstance(plain.engine, RecheckedEngine)
    reference = classifier.predict_logits(TEXTS)
    batch = int8.encode(TEXTS)
    got, fast = int8.forward(batch), plain.forward(batch)
    close = decision_margins(fast, heads.SINGLE_LABEL) < served.margin
    assert close.any() and not close.all()  # the tiny model has both kinds at its measured margin
    assert np.abs(got[close] - reference[close]).max() < 1e-3
    assert np.array_equal(got[~close], fast[~close])
    assert (got.argmax(axis=1) == reference.argmax(axis=1)).all()


def test_auto_offers_rechecked_int8_beside_the_float_engines_and_a_margin_of_0_leaves_it_out(
        tiny_model_dir, engine_cache, monkeypatch):
    timed = []

    def fastest(candidates, *args):
        timed.append(candidates)
        return candidates[0]

    monkeypatch.setattr(select, "fastest_by_size", fastest)
    SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="auto", engine="auto")
    SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="auto", engine="auto", recheck_margin=0)
    offered, without = timed
    assert [(e.name, e.dtype, isinstance(e, RecheckedEngine)) for e in offered if e.dtype == "int8"] == [
        ("onnxruntime", "int8", True)]
    assert "int8" not in [e.dtype for e in without]


def test_auto_never_offers_int8_to_a_regression_head(tmp_path, engine_cache, monkeypatch):
    timed = []
    monkeypatch.setattr(select, "fastest_by_size", lambda candidates, *a: timed.append(candidates) or candidates[0])
    model = build_tiny_model(tmp_path / "regression", labels=["score"], problem_type="regression")
    SequenceClassifier(str(model), device="cpu", dtype="auto", engine="auto")
    assert "int8" not in [e.dtype for e in timed[0]]


def test_auto_times_the_recheck_at_the_share_of_texts_expected_to_need_it(monkeypatch):
    fast, exact = Recorded("int8", None), Recorded("float32", None)
    engine = RecheckedEngine(fast, exact, margin=0.3, problem_type=heads.SINGLE_LABEL)
    engine.expected_fraction = 0.25
    seconds = {"int8": 1.0, "float32": 2.0}
    real = select.seconds_per_batch

    def timed(e, size, width, token, repeats=3, warm=True):
        return seconds[e.name] * size if not isinstance(e, RecheckedEngine) else real(e, size, width, token, repeats, warm)

    monkeypatch.setattr(select, "seconds_per_batch", timed)
    assert real(engine, 4, 24, 5) == pytest.approx(4 * 1.0 + 0.25 * 4 * 2.0)


def test_the_server_reports_the_recheck_in_model_info_and_metrics(tiny_model_dir, engine_cache):
    import requests

    from clients import SentimentClient
    from tests.support.helpers import server_settings
    from tests.support.helpers import ServerThread

    settings = server_settings(tiny_model_dir, engine="onnxruntime", dtype="int8")
    int8 = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine="onnxruntime")
    with ServerThread(settings, int8) as running:
        with SentimentClient(running.target, timeout=30) as client:
            before = client.model_info().recheck
            client.predict_batch(TEXTS)
            info = client.model_info()
        metrics = requests.get(f"http://127.0.0.1:{running.running.metrics_port}/metrics", timeout=10).text
    assert info.dtype == "int8" and info.recheck is not None
    assert info.recheck.margin == pytest.approx(int8.engine.margin) and info.recheck.engine == "onnxruntime float32"
    assert info.recheck.texts == before.texts + len(TEXTS)
    assert 0 < info.recheck.rechecked - before.rechecked < len(TEXTS)
    labels = '{model="sentiment",version="1"}'
    assert f"sentiment_int8_rechecked_texts_total{labels} {float(info.recheck.rechecked)}" in metrics
    assert f"sentiment_int8_texts_total{labels} {float(info.recheck.texts)}" in metrics


def test_a_margin_given_is_used_as_given_and_none_is_measured_on_the_calibration_batch():
    fast_logits = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=np.float32)
    fast = Recorded("int8", lambda ids: fast_logits.copy())
    exact = Recorded("float32", lambda ids: fast_logits + np.array([[0.2, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    calibration = (np.ones((2, 4), dtype=np.int64), np.ones((2, 4), dtype=np.int64))
    given = select.with_recheck(fast, exact, heads.SINGLE_LABEL, calibration, margin=0.75)
    measured = select.with_recheck(fast, exact, heads.SINGLE_LABEL, calibration, margin=None)
    assert given.margin == 0.75
    assert measured.margin == pytest.approx(recheck.RECHECK_FACTOR * (0.2 + 0.0) / 2)
    # both calibration rows are clear of the measured margin (0.3): auto's timing counts the floor share
    assert measured.expected_fraction == select.EXPECTED_RECHECK_FLOOR
    assert select.with_recheck(fast, exact, heads.REGRESSION, calibration, margin=None) is fast
