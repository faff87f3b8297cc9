"""Long texts read whole: windows on token boundaries, their combination, admission, the window cap."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from clients import SentimentClient, SentimentError
from server.core.chunking import WindowPlan, count_windows
from tests.support.helpers import LABELS, WORDS, ServerThread, gated, policy, server_settings

# The tiny model takes 64 tokens: windows of 64 hold 62 text tokens and overlap by 16, so they start every
# 46 tokens. 120 one-token words make three windows: tokens [0, 62), [46, 108) and [92, 120).
THREE_WINDOW_WORDS = 120


def long_text(words: int = THREE_WINDOW_WORDS, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def plan_for(classifier, **overrides) -> WindowPlan:
    values = dict(window_tokens=None, overlap_tokens=None, max_windows=32)
    values.update(overrides)
    return WindowPlan.for_model(classifier.max_tokens, 2, **values)


def test_windows_cover_the_text_on_token_boundaries_with_special_tokens_each(classifier):
    text = long_text()
    plan = plan_for(classifier)
    assert (plan.window_tokens, plan.overlap_tokens) == (64, 16)
    (windows,) = classifier.tokenizer.windows([text], plan)
    tokenizer = classifier.tokenizer.hf
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(content) == THREE_WINDOW_WORDS and len(windows) == 3
    assert [w.text_tokens for w in windows] == [62, 62, 28]
    for number, window in enumerate(windows):
        ids = window.encoding.input_ids
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert ids[1:-1] == content[number * 46 : number * 46 + 62]
        # the span is whole words of the original text, and reads back to the same tokens
        assert tokenizer(text[window.start : window.end], add_special_tokens=False)["input_ids"] == ids[1:-1]
    assert windows[0].start == 0 and windows[-1].end == len(text)
    assert windows[1].start < windows[0].end  # neighbours overlap


def test_a_text_that_fits_is_one_window_equal_to_its_ordinary_encoding(classifier):
    (windows,) = classifier.tokenizer.windows(["i love this film"], plan_for(classifier))
    assert len(windows) == 1
    assert windows[0].encoding.input_ids == classifier.encode(["i love this film"])[0].input_ids


def test_window_count_and_plan_bounds():
    assert [count_windows(n, 62, 46) for n in (1, 62, 63, 108, 109, 154, 155)] == [1, 1, 2, 2, 3, 3, 4]
    plan = WindowPlan.for_model(512, 2, window_tokens=1000, overlap_tokens=600, max_windows=4)
    assert plan.window_tokens == 512 and plan.overlap_tokens == 509  # windows still move on


def test_the_built_in_model_reads_in_windows_of_its_training_length():
    """Measured by bench.long_texts: the built-in model (trained on 128-token texts) reads long reviews best
    in 128-token windows; any other model defaults to its own limit."""
    from server.builtin_model import TRAINED_MAX_TOKENS, builtin_model_dir
    from server.settings import load_settings

    assert TRAINED_MAX_TOKENS == 128
    assert load_settings([]).core_policy().long_text.window_tokens == TRAINED_MAX_TOKENS
    by_path = load_settings(["--model", str(builtin_model_dir())])
    assert by_path.core_policy().long_text.window_tokens == TRAINED_MAX_TOKENS
    assert load_settings(["--model", "/models/other"]).core_policy().long_text.window_tokens is None


def test_three_windows_are_read_and_combined_by_their_token_weighted_mean(client, classifier):
    text = long_text()
    prediction = client.predict(text, truncation="chunk", return_windows=True, return_logits=True)
    assert prediction.windows == 3 and prediction.truncated is False
    windows = prediction.window_predictions
    assert [w.prediction.num_tokens for w in windows] == [64, 64, 30]
    assert prediction.num_tokens == 64 + 64 + 30
    # every window is its own prediction of exactly its tokens
    (planned,) = classifier.tokenizer.windows([text], plan_for(classifier))
    logits = classifier.forward([w.encoding for w in planned])
    for window, plan, row in zip(windows, planned, logits):
        assert (window.start, window.end) == (plan.start, plan.end)
        assert window.prediction.logits == pytest.approx(list(row), abs=1e-4)
    # the documented combination: probabilities weighted by the text tokens each window read
    weights = np.array([62, 62, 28], dtype=float)
    probabilities = np.array([[w.prediction.scores[label] for label in LABELS] for w in windows])
    expected = (probabilities * weights[:, None]).sum(axis=0) / weights.sum()
    assert [prediction.scores[label] for label in LABELS] == pytest.approx(list(expected), abs=1e-5)
    assert prediction.label == LABELS[int(expected.argmax())]


def test_windows_are_returned_only_when_asked(client):
    prediction = client.predict(long_text(), truncation="chunk")
    assert prediction.windows == 3 and prediction.window_predictions is None
    assert client.predict(long_text()).windows is None  # the default still cuts


def test_past_the_window_cap_is_invalid_argument_naming_the_text(tiny_model_dir, classifier):
    settings = server_settings(tiny_model_dir)
    with ServerThread(settings, classifier, policy(settings, max_windows=2)) as server:
        with SentimentClient(server.target, timeout=10) as client:
            assert client.predict(long_text(100), truncation="chunk").windows == 2
            with pytest.raises(SentimentError) as error:
                client.predict_batch(["fine", long_text()], truncation="chunk")
    assert error.value.code == "INVALID_ARGUMENT" and error.value.field == "texts[1]"
    assert "3 windows" in error.value.message and "limit is 2" in error.value.message


def test_the_server_default_can_be_chunk_and_a_request_still_overrides_it(tiny_model_dir, classifier):
    settings = server_settings(tiny_model_dir, long_text="chunk")
    with ServerThread(settings, classifier, policy(settings, warmup=False)) as server:
        with SentimentClient(server.target, timeout=10) as client:
            assert client.predict(long_text()).windows == 3
            cut = client.predict(long_text(), truncation="truncate")
            assert cut.windows is None and cut.truncated is True
            info = client.model_info()
    assert (info.long_text, info.window_tokens, info.overlap_tokens, info.max_windows) == ("chunk", 64, 16, 32)


def test_admission_counts_every_window_of_a_chunked_text(tiny_model_dir, classifier):
    """With the model busy, a 3-window text takes three of the queue's four places: a second one is refused,
    a one-window text still fits."""
    from server.core.inference import InferenceCore
    from server.core.types import PredictOptions
    from server.errors import Overloaded

    held, gate = gated(classifier)
    chunked = PredictOptions(truncation="chunk")

    async def scenario():
        core = InferenceCore(held, policy(server_settings(tiny_model_dir), max_queue_size=4, warmup=False))
        await core.start()
        busy = asyncio.ensure_future(core.predict(["i love this"]))
        await _until(lambda: gate.calls_started == 1)
        first = asyncio.ensure_future(core.predict([long_text()], chunked))
        await _until(lambda: core.batcher.queue_depth == 3)
        with pytest.raises(Overloaded):
            await core.predict([long_text(seed=2)], chunked)
        short = asyncio.ensure_future(core.predict(["i love this"], chunked))
        await _until(lambda: core.batcher.queue_depth == 4)
        gate.gate.set()
        results = await asyncio.gather(first, short, busy)
        texts_run = core.batcher.stats.texts
        await core.stop()
        return results, texts_run

    (first, short, _), texts_run = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert first[0].windows == 3 and short[0].windows == 1
    assert texts_run == 5  # the model ran every window as a text of its own


def test_a_call_needing_more_windows_than_the_queue_holds_is_invalid_not_overloaded(tiny_model_dir, classifier):
    settings = server_settings(tiny_model_dir)
    with ServerThread(settings, classifier, policy(settings, max_queue_size=2, warmup=False)) as server:
        with SentimentClient(server.target, timeout=10) as client:
            with pytest.raises(SentimentError) as error:
                client.predict(long_text(), truncation="chunk")
    assert error.value.code == "INVALID_ARGUMENT" and "3 windows" in error.value.message


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.001)
