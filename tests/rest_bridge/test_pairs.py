"""Text pairs through the bridge: ``POST /predict`` takes ``text_pair`` (with ``text``) and ``text_pairs`` (with
``texts``), ``POST /explain`` takes ``text_pair``, ``/v2`` passes a ``text_pair`` input through, and the OpenAPI
document says so. A real bridge over the real gRPC server on the tiny pair model."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
import requests
import torch

from tests.support.bridge import BridgeThread

TEXT, PAIR = "the food was good but the service was bad", "service"
PAIRS = [("the food was good but the service was bad", "food"), ("i love this film", "the night")]


@pytest.fixture(scope="module")
def bridge(grpc_server):
    with BridgeThread(grpc_server.target) as running:
        yield running


def post(bridge, path: str, body: dict) -> requests.Response:
    return requests.post(f"{bridge.url}{path}", json=body, timeout=30)


def offline(classifier, text: str, pair: str | None = None) -> np.ndarray:
    with torch.inference_mode():
        return classifier.model(**classifier.tokenizer.hf(text, pair, return_tensors="pt")).logits[0].numpy()


def test_predict_reads_text_pair_as_a_second_segment(bridge, classifier):
    answer = post(bridge, "/predict", {"text": TEXT, "text_pair": PAIR, "return_logits": True})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["logits"], offline(classifier, TEXT, PAIR), atol=1e-4)
    joined = post(bridge, "/predict", {"text": f"{TEXT} {PAIR}", "return_logits": True}).json()
    assert not np.allclose(joined["logits"], answer.json()["logits"], atol=1e-3)


def test_predict_reads_text_pairs_one_per_text(bridge, classifier):
    answer = post(bridge, "/predict", {"texts": [t for t, _ in PAIRS], "text_pairs": [p for _, p in PAIRS],
                                       "return_logits": True})
    assert answer.status_code == 200, answer.text
    for (text, pair), prediction in zip(PAIRS, answer.json()["predictions"]):
        np.testing.assert_allclose(prediction["logits"], offline(classifier, text, pair), atol=1e-4)


@pytest.mark.parametrize("body, field", [
    ({"text": TEXT, "text_pair": ""}, "text_pair"),
    ({"text": TEXT, "text_pair": "  "}, "text_pair"),
    ({"texts": ["a", "b"], "text_pairs": ["c", ""]}, "text_pairs[1]"),
    ({"texts": ["a", "b"], "text_pairs": ["c"]}, "text_pairs"),
    ({"text": TEXT, "text_pair": PAIR, "truncation": "chunk"}, "options.truncation"),
])
def test_a_bad_pair_is_400_invalid_argument_naming_the_field(bridge, body, field):
    answer = post(bridge, "/predict", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT" and answer.json()["error"]["field"] == field


@pytest.mark.parametrize("body", [{"texts": ["a"], "text_pair": "b"}, {"text": "a", "text_pairs": ["b"]},
                                  {"text_pair": "b"}])
def test_a_pair_in_the_wrong_shape_is_422_as_the_schema_says(bridge, body):
    document = requests.get(f"{bridge.url}/openapi.json", timeout=10).json()
    schema = {"$ref": "#/components/schemas/PredictIn", "components": document["components"]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(body)
    assert post(bridge, "/predict", body).status_code == 422


def test_the_schema_takes_the_pair_shapes_the_bridge_answers(bridge):
    document = requests.get(f"{bridge.url}/openapi.json", timeout=10).json()
    schema = {"$ref": "#/components/schemas/PredictIn", "components": document["components"]}
    for body in ({"text": "a", "text_pair": "b"}, {"texts": ["a"], "text_pairs": ["b"]}):
        assert jsonschema.Draft202012Validator(schema).is_valid(body)
    assert "text_pair" in document["components"]["schemas"]["ExplainIn"]["properties"]


def test_explain_attributes_both_segments_with_offsets_into_each(bridge):
    text, pair = "the food was good", "service night"
    answer = post(bridge, "/explain", {"text": text, "text_pair": pair, "steps": 8})
    assert answer.status_code == 200, answer.text
    words = answer.json()["words"]
    assert [(w["segment"], w["word"]) for w in words] == [(0, "the"), (0, "food"), (0, "was"), (0, "good"),
                                                         (1, "service"), (1, "night")]
    for w in words:
        assert (text, pair)[w["segment"]][w["start"]:w["end"]] == w["word"]
    plain = post(bridge, "/explain", {"text": text, "steps": 8}).json()
    assert all("segment" not in w for w in plain["words"])  # the answer without a pair is unchanged
    refused = post(bridge, "/explain", {"text": text, "text_pair": ""})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "text_pair"


def test_v2_passes_a_text_pair_input_through(bridge, classifier):
    texts, pairs = [t for t, _ in PAIRS], [p for _, p in PAIRS]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts},
                       {"name": "text_pair", "datatype": "BYTES", "shape": [2], "data": pairs}],
            "outputs": [{"name": "logits"}]}
    answer = post(bridge, "/v2/models/sentiment/infer", body)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    got = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    for row, (text, pair) in enumerate(PAIRS):
        np.testing.assert_allclose(got[row], offline(classifier, text, pair), atol=1e-4)
    body["inputs"][1].update(shape=[1], data=["x"])
    mismatch = post(bridge, "/v2/models/sentiment/infer", body)
    assert mismatch.status_code == 400 and "text_pair" in mismatch.text
    metadata = requests.get(f"{bridge.url}/v2/models/sentiment", timeout=10).json()
    assert [i["name"] for i in metadata["inputs"]] == ["text", "text_pair"]
