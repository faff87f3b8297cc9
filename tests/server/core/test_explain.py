"""Explanations: words with offsets into the text, completeness of Integrated Gradients, the limit."""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests
import torch

from clients import AsyncSentimentClient, SentimentClient, SentimentError
from clients.cli import main
from tests.support.helpers import server_settings
from tests.support.helpers import LABELS, ServerThread, policy

# "lovely", "films" and "xyz" are not in the tiny vocabulary: they become several word pieces each
TEXT = "I love this lovely  movie, but the food was AWFUL! xyz"


def baseline_logit_difference(classifier, text: str, target: int) -> float:
    """What IG's attributions must add up to: the target logit of the text minus that of the baseline
    (every word piece replaced by [PAD], special tokens kept)."""
    tokenizer = classifier.tokenizer.hf
    encoding = tokenizer(text, return_special_tokens_mask=True)
    ids = torch.tensor([encoding["input_ids"]])
    special = torch.tensor([encoding["special_tokens_mask"]], dtype=torch.bool)
    baseline = torch.where(special, ids, torch.full_like(ids, tokenizer.pad_token_id))
    with torch.inference_mode():
        text_logit = classifier.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, target]
        base_logit = classifier.model(input_ids=baseline, attention_mask=torch.ones_like(ids)).logits[0, target]
    return float(text_logit - base_logit)


def test_words_are_merged_pieces_whose_offsets_slice_the_original_text(client):
    explanation = client.explain(TEXT)
    words = explanation.words
    assert [w.word for w in words] == ["I", "love", "this", "lovely", "movie", ",", "but", "the", "food", "was",
                                      "AWFUL", "!", "xyz"]
    for word in words:
        assert TEXT[word.start : word.end] == word.word
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_attributions_add_up_to_the_logit_difference_from_the_baseline(client, classifier):
    explanation = client.explain(TEXT, steps=50, timeout=60)
    target = LABELS.index(explanation.target)
    expected = baseline_logit_difference(classifier, TEXT, target)
    total = sum(w.attribution for w in explanation.words)
    assert total == pytest.approx(expected, abs=0.02 * max(1.0, abs(expected)))
    assert abs(explanation.convergence_delta) <= 0.02 * max(1.0, abs(expected))


def test_the_predicted_label_is_explained_unless_one_is_named(client):
    predicted = client.predict(TEXT)
    default = client.explain(TEXT, steps=20)
    assert default.target == predicted.label == default.prediction.label
    assert default.prediction.scores == pytest.approx(predicted.scores, abs=1e-4)
    other = next(label for label in LABELS if label != predicted.label)
    named = client.explain(TEXT, label=other, steps=20)
    assert named.target == other and named.prediction.label == predicted.label


@pytest.mark.parametrize("kwargs, field", [
    ({"label": "ecstatic"}, "label"),
    ({"truncation": "chunk"}, "truncation"),
    ({"steps": 100000}, "steps"),
])
def test_bad_explain_requests_are_invalid_argument_naming_the_field(client, kwargs, field):
    with pytest.raises(SentimentError) as error:
        client.explain(TEXT, **kwargs)
    assert error.value.code == "INVALID_ARGUMENT" and error.value.field == field


def test_long_texts_are_explained_cut_or_refused(client):
    long_text = "good film " * 100
    explanation = client.explain(long_text, steps=10)
    assert explanation.prediction.truncated is True and explanation.prediction.num_tokens == 64
    assert len(explanation.words) == 62
    with pytest.raises(SentimentError) as error:
        client.explain(long_text, truncation="reject")
    assert error.value.code == "INVALID_ARGUMENT"


def test_an_explanation_stops_at_its_deadline_or_when_its_caller_goes(classifier):
    """The explainer checks before every forward pass; a deadline already past stops it before the first."""
    import time

    from server.engines.explainer import Explainer
    from server.errors import Cancelled, DeadlineExceeded

    explainer = Explainer(classifier.model, pad_token_id=classifier.tokenizer.pad_token_id, max_batch_tokens=512)
    encoding = classifier.tokenizer.for_explanation(TEXT)
    with pytest.raises(DeadlineExceeded):
        explainer.explain(TEXT, encoding, target=None, steps=50, stop_at=time.monotonic())
    gone = threading.Event()
    gone.set()
    with pytest.raises(Cancelled):
        explainer.explain(TEXT, encoding, target=None, steps=50, cancelled=gone)
    # rows through the model: the prediction, the embeddings of text and baseline, one per step, the delta's two
    assert explainer.explain(TEXT, encoding, target=None, steps=4).forward_passes == 1 + 2 + 4 + 2
    assert explainer.explain(TEXT, encoding, target=None, steps=10).forward_passes == 1 + 2 + 10 + 2


def test_a_spent_deadline_answers_deadline_exceeded(client):
    with pytest.raises(SentimentError) as error:
        client.explain(TEXT, steps=300, timeout=0.001)
    assert error.value.code == "DEADLINE_EXCEEDED"


def test_past_the_explanation_limit_calls_are_refused_at_once(tiny_model_dir, classifier):
    """Hold the model thread with a gate: one explanation waits for it (the limit is 1), the next is refused
    at once, and predictions are not limited by it."""
    settings = server_settings(tiny_model_dir, max_concurrent_explanations=1)
    with ServerThread(settings, classifier, policy(settings, warmup=False)) as server:
        core = server.running.core
        gate = threading.Event()
        held = asyncio.run_coroutine_threadsafe(core.batcher.run_in_worker(gate.wait, 30), server.loop)

        async def scenario():
            async with AsyncSentimentClient(server.target, timeout=30) as client:
                waiting = asyncio.ensure_future(client.explain(TEXT, steps=10))
                while core.explanations._running < 1:
                    await asyncio.sleep(0.001)
                with pytest.raises(SentimentError) as refused:
                    await client.explain(TEXT, steps=10)
                gate.set()
                return await waiting, refused.value.code

        try:
            explanation, code = asyncio.run(asyncio.wait_for(scenario(), 60))
        finally:
            gate.set()
            held.result(30)
        assert code == "RESOURCE_EXHAUSTED"
        assert explanation.target in LABELS
        with SentimentClient(server.target, timeout=10) as client:
            assert client.explain(TEXT, steps=10).target in LABELS  # the slot is free again


def test_explain_over_the_bridge_has_the_documented_shape(grpc_server):
    from tests.support.bridge import BridgeThread

    with BridgeThread(grpc_server.target) as bridge:
        body = requests.post(f"{bridge.url}/explain", json={"text": TEXT, "steps": 20}, timeout=30).json()
        named = requests.post(f"{bridge.url}/explain", json={"text": TEXT, "label": "neutral", "steps": 10},
                              timeout=30).json()
        bad_label = requests.post(f"{bridge.url}/explain", json={"text": TEXT, "label": "ecstatic"}, timeout=30)
        bad_steps = requests.post(f"{bridge.url}/explain", json={"text": TEXT, "steps": "many"}, timeout=30)
        empty = requests.post(f"{bridge.url}/explain", json={"text": ""}, timeout=30)
    assert set(body) == {"label", "target", "scores", "words", "convergence_delta", "num_tokens", "truncated"}
    assert body["target"] == body["label"] and set(body["scores"]) == set(LABELS)
    assert all(set(w) == {"word", "start", "end", "attribution"} for w in body["words"])
    assert all(TEXT[w["start"] : w["end"]] == w["word"] for w in body["words"])
    assert named["target"] == "neutral"
    assert bad_label.status_code == 400 and bad_label.json()["error"]["field"] == "label"
    assert bad_steps.status_code == 422 and empty.status_code == 400


def test_cli_explain_marks_words_by_sign(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "explain", "--color", "never", "--steps", "20", TEXT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("predicted ") and "explaining" in out[0]
    assert "[+" in out[1] or "[-" in out[1]
    assert out[1].replace("[+", "").replace("[-", "").replace("]", "") == TEXT
    assert out[2].startswith("strongest: ")
    assert main(["--target", grpc_server.target, "explain", "--json", "--steps", "10", TEXT]) == 0
    assert '"words"' in capsys.readouterr().out


def test_model_info_describes_explanations(client):
    info = client.model_info()
    assert (info.max_concurrent_explanations, info.explain_steps, info.max_explain_steps) == (2, 50, 300)
    assert info.problem_type == "single_label_classification"
