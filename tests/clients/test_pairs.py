"""Text pairs in the client library (sync and asyncio: predict, predict_batch, the futures, stream items, explain)
and the CLI (``sentiment predict --pair``, ``sentiment explain --pair``), against the real gRPC server on the tiny
pair model."""

from __future__ import annotations

import asyncio
import json

import pytest
import torch

from clients.aio import AsyncSentimentClient
from clients.cli import main
from clients.errors import SentimentError

TEXT, PAIR = "the food was good but the service was bad", "service"
PAIRS = [("the food was good but the service was bad", "food"), ("i love this film", "the night")]


def offline(classifier, text: str, pair: str | None = None) -> list[float]:
    with torch.inference_mode():
        return classifier.model(**classifier.tokenizer.hf(text, pair, return_tensors="pt")).logits[0].tolist()


def test_every_sync_predict_call_takes_a_pair(client, classifier):
    assert client.predict(TEXT, text_pair=PAIR, return_logits=True).logits == pytest.approx(
        offline(classifier, TEXT, PAIR), abs=1e-4)
    assert client.predict(TEXT, return_logits=True).logits == pytest.approx(offline(classifier, TEXT), abs=1e-4)
    assert client.predict_future(TEXT, text_pair=PAIR, return_logits=True).result(10).logits == pytest.approx(
        offline(classifier, TEXT, PAIR), abs=1e-4)
    texts, pairs = [t for t, _ in PAIRS] + ["okay"], [p for _, p in PAIRS] + [None]
    for batch in (client.predict_batch(texts, text_pairs=pairs, return_logits=True),
                  client.predict_batch_future(texts, text_pairs=pairs, return_logits=True).result(10)):
        for text, pair, prediction in zip(texts, pairs, batch):
            assert prediction.logits == pytest.approx(offline(classifier, text, pair), abs=1e-4)


def test_the_stream_takes_id_text_pair_items(client, classifier):
    items = [("a", PAIRS[0][0], PAIRS[0][1]), ("b", PAIRS[1][0]), PAIRS[1][0]]
    results = {r.id: r.prediction for r in client.stream(items, return_logits=True)}
    assert results["a"].logits == pytest.approx(offline(classifier, *PAIRS[0]), abs=1e-4)
    assert results["b"].logits == pytest.approx(offline(classifier, PAIRS[1][0]), abs=1e-4)


def test_a_count_mismatch_is_a_sentiment_error_naming_text_pairs(client):
    with pytest.raises(SentimentError) as caught:
        client.predict_batch(["a", "b"], text_pairs=["c"])
    assert caught.value.code == "INVALID_ARGUMENT" and caught.value.field == "text_pairs"


def test_explain_takes_a_pair(client):
    explanation = client.explain("the food was good", text_pair="service", steps=4)
    assert [(w.segment, w.word) for w in explanation.words][-1] == (1, "service")
    assert explanation.to_dict()["words"][-1]["segment"] == 1


def test_the_asyncio_client_takes_pairs(grpc_server, classifier):
    async def calls():
        async with AsyncSentimentClient(grpc_server.target, timeout=10) as client:
            one = await client.predict(TEXT, text_pair=PAIR, return_logits=True)
            many = await client.predict_batch([t for t, _ in PAIRS], text_pairs=[p for _, p in PAIRS],
                                              return_logits=True)
            streamed = [r async for r in client.stream([("x", TEXT, PAIR)], return_logits=True)]
            explained = await client.explain("the food was good", text_pair="service", steps=4)
            return one, many, streamed, explained

    one, many, streamed, explained = asyncio.run(calls())
    assert one.logits == pytest.approx(offline(classifier, TEXT, PAIR), abs=1e-4)
    for (text, pair), prediction in zip(PAIRS, many):
        assert prediction.logits == pytest.approx(offline(classifier, text, pair), abs=1e-4)
    assert streamed[0].prediction.logits == pytest.approx(offline(classifier, TEXT, PAIR), abs=1e-4)
    assert explained.words[-1].segment == 1


def test_cli_predict_with_a_pair(grpc_server, client, capsys):
    assert main(["--target", grpc_server.target, "predict", "--json", "--pair", PAIR, TEXT]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["text_pair"] == PAIR
    assert answer["scores"] == pytest.approx(client.predict(TEXT, text_pair=PAIR).scores, abs=1e-5)
    assert answer["scores"] != pytest.approx(client.predict(TEXT).scores, abs=1e-5)
    assert main(["--target", grpc_server.target, "predict", "--pair", PAIR, TEXT]) == 0
    assert f"{TEXT} | {PAIR}" in capsys.readouterr().out


def test_cli_explain_with_a_pair(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "explain", "--steps", "4", "--color", "never", "--pair", "service",
                 "the food was good"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("pair: ") and "service" in lines[2]
