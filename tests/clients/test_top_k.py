"""``top_k`` and ``raw_scores`` in the client library (sync and asyncio, every predict call and the stream) and
in the CLI (``sentiment predict --top-k K --raw-scores``), against the real gRPC server."""

from __future__ import annotations

import asyncio
import json

import pytest

from clients import SentimentClient
from clients.aio import AsyncSentimentClient
from clients.cli import main
from clients.errors import SentimentError
from clients.types import LabelScore, PredictOptions
from tests.support.helpers import LABELS

TEXTS = ["i love this film", "terrible awful day", "okay"]


def best_first(values: list[float], k: int) -> list[int]:
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]


def expected_top(scores: dict[str, float], k: int) -> list[LabelScore]:
    values = [scores[label] for label in LABELS]
    return [LabelScore(LABELS[i], values[i], i) for i in best_first(values, k)]


def test_every_sync_predict_call_takes_top_k(client):
    one = client.predict(TEXTS[0], top_k=2)
    assert one.top == expected_top(one.scores, 2)
    for p in client.predict_batch(TEXTS, top_k=1):
        assert p.top == expected_top(p.scores, 1) and p.top[0].label == p.label
    assert client.predict_future(TEXTS[1], top_k=3).result(10).top == expected_top(client.predict(TEXTS[1]).scores, 3)
    for p in client.predict_batch_future(TEXTS, options=PredictOptions(top_k=2)).result(10):
        assert p.top == expected_top(p.scores, 2)
    assert client.predict(TEXTS[0]).top is None


def test_raw_scores_give_the_logits_of_return_logits(client):
    for text in TEXTS:
        logits = client.predict(text, return_logits=True).logits
        raw = client.predict(text, raw_scores=True, top_k=3)
        assert [raw.scores[label] for label in LABELS] == pytest.approx(logits, abs=1e-4)
        assert [t.class_id for t in raw.top] == best_first(logits, 3)


def test_the_stream_carries_the_options(client):
    results = {r.id: r for r in client.stream(TEXTS, top_k=2, raw_scores=True)}
    for index, text in enumerate(TEXTS):
        prediction = results[str(index)].prediction
        logits = client.predict(text, return_logits=True).logits
        assert [t.class_id for t in prediction.top] == best_first(logits, 2)


def test_to_dict_gives_top_in_the_rest_shape(client):
    out = client.predict(TEXTS[0], top_k=2).to_dict()
    assert [set(t) for t in out["top"]] == [{"label", "score", "predicted_class"}] * 2
    assert out["top"][0]["predicted_class"] == out["predicted_class"]
    assert "top" not in client.predict(TEXTS[0]).to_dict()


def test_a_negative_top_k_is_invalid_argument_naming_the_field(client):
    with pytest.raises(SentimentError) as refused:
        client.predict(TEXTS[0], top_k=-1)
    assert refused.value.code == "INVALID_ARGUMENT" and "top_k" in str(refused.value)


def test_the_asyncio_client_takes_top_k_and_raw_scores(grpc_server):
    async def run():
        async with AsyncSentimentClient(grpc_server.target, timeout=10) as aio:
            one = await aio.predict(TEXTS[0], top_k=1, raw_scores=True)
            batch = await aio.predict_batch(TEXTS, top_k=2)
            streamed = [r async for r in aio.stream(TEXTS, top_k=3)]
            with pytest.raises(SentimentError) as refused:
                await aio.predict(TEXTS[0], top_k=-5)
            return one, batch, streamed, refused.value

    one, batch, streamed, refused = asyncio.run(run())
    assert one.top[0].label == one.label and len(one.top) == 1
    assert all(p.top == expected_top(p.scores, 2) for p in batch)
    assert all(len(r.prediction.top) == 3 for r in streamed)
    assert refused.code == "INVALID_ARGUMENT"


def test_cli_top_k_and_raw_scores(grpc_server, client, capsys):
    target = ["--target", grpc_server.target]
    assert main([*target, "predict", "--json", "--top-k", "2", "--raw-scores", *TEXTS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for text, line in zip(TEXTS, lines):
        logits = client.predict(text, return_logits=True).logits
        assert line["text"] == text
        assert [t["predicted_class"] for t in line["top"]] == best_first(logits, 2)
        assert [line["scores"][label] for label in LABELS] == pytest.approx(logits, abs=1e-4)
    # the human form shows the ranked labels, best first
    assert main([*target, "predict", "--top-k", "2", TEXTS[0]]) == 0
    shown = capsys.readouterr().out
    top = client.predict(TEXTS[0], top_k=2).top
    assert f"({top[0].label} {top[0].score:.3f}  {top[1].label} {top[1].score:.3f})" in shown


def test_cli_a_bad_top_k_is_an_error(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "predict", "--top-k", "-1", "good"]) == 2
    assert "top_k" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["--target", grpc_server.target, "predict", "--top-k", "two", "good"])
    assert usage.value.code == 2
