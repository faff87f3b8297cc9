"""``top_k`` and ``raw_scores`` through the bridge: ``POST /predict`` takes them and answers ``top``; ``/v2``
passes Triton's classification parameter and the ``raw_scores`` request parameter through to the server; the
OpenAPI document describes them. A real bridge over the real gRPC server."""

from __future__ import annotations

import jsonschema
import pytest
import requests

from tests.support.bridge import BridgeThread
from tests.support.helpers import LABELS

TEXTS = ["i love this film", "terrible awful day", "okay"]


@pytest.fixture(scope="module")
def bridge(grpc_server):
    with BridgeThread(grpc_server.target) as running:
        yield running


def post(bridge, path: str, body: dict) -> requests.Response:
    return requests.post(f"{bridge.url}{path}", json=body, timeout=10)


def best_first(values: list[float], k: int) -> list[int]:
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]


# POST /predict -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_predict_answers_the_best_k_labels_best_first(bridge, k):
    body = post(bridge, "/predict", {"text": TEXTS[0], "top_k": k}).json()
    probabilities = [body["scores"][label] for label in LABELS]
    order = best_first(probabilities, k)
    assert body["top"] == [{"label": LABELS[i], "score": probabilities[i], "predicted_class": i} for i in order]
    assert body["top"][0]["predicted_class"] == body["predicted_class"]


def test_without_top_k_the_seed_shape_is_unchanged(bridge):
    for body in ({"text": TEXTS[0]}, {"text": TEXTS[0], "top_k": 0}):
        answer = post(bridge, "/predict", body).json()
        assert "top" not in answer and set(answer) == {"predicted_class", "label", "scores", "num_tokens", "truncated"}


def test_raw_scores_are_the_logits_and_top_ranks_by_them_for_every_text(bridge):
    logits = [p["logits"] for p in post(bridge, "/predict", {"texts": TEXTS, "return_logits": True}).json()["predictions"]]
    raw = post(bridge, "/predict", {"texts": TEXTS, "raw_scores": True, "top_k": 2}).json()["predictions"]
    for row, prediction in zip(logits, raw):
        assert [prediction["scores"][label] for label in LABELS] == pytest.approx(row, abs=1e-4)
        assert [t["predicted_class"] for t in prediction["top"]] == best_first(row, 2)
        assert [t["score"] for t in prediction["top"]] == pytest.approx([row[i] for i in best_first(row, 2)], abs=1e-4)


@pytest.mark.parametrize("k", [-1, -(2**31)])
def test_a_negative_top_k_is_400_invalid_argument_naming_the_field(bridge, k):
    answer = post(bridge, "/predict", {"text": TEXTS[0], "top_k": k})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and "top_k" in error["field"]


@pytest.mark.parametrize("body", [{"top_k": 1.5}, {"top_k": "2"}, {"top_k": True}, {"top_k": 2**31},
                                  {"raw_scores": "yes"}, {"raw_scores": 1}])
def test_a_top_k_or_raw_scores_of_the_wrong_type_is_422_naming_it(bridge, body):
    answer = post(bridge, "/predict", {"text": TEXTS[0], **body})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == next(iter(body))


def test_a_whole_float_is_a_json_integer(bridge):
    assert len(post(bridge, "/predict", {"text": TEXTS[0], "top_k": 2.0}).json()["top"]) == 2


# /v2: Triton's classification extension over REST -------------------------------------------------------

def infer_body(outputs: list[dict], **parameters) -> dict:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}], "outputs": outputs}
    if parameters:
        body["parameters"] = parameters
    return body


def test_v2_passes_the_classification_parameter_through(bridge):
    plain = post(bridge, "/v2/models/sentiment/infer", infer_body([{"name": "scores"}])).json()
    scores = plain["outputs"][0]["data"]
    matrix = [scores[i : i + len(LABELS)] for i in range(0, len(scores), len(LABELS))]
    answer = post(bridge, "/v2/models/sentiment/infer",
                  infer_body([{"name": "scores", "parameters": {"classification": 2}}, {"name": "label"}]))
    assert answer.status_code == 200, answer.text
    ranked, label = answer.json()["outputs"]
    assert (ranked["name"], ranked["datatype"], ranked["shape"]) == ("scores", "BYTES", [len(TEXTS), 2])
    expected = [f"{row[i]:f}:{i}:{LABELS[i]}" for row in matrix for i in best_first(row, 2)]
    assert ranked["data"] == expected
    assert label["data"] == [element.split(":")[2] for element in expected[::2]]


def test_v2_classification_in_binary_and_with_raw_scores(bridge):
    plain = post(bridge, "/v2/models/sentiment/infer", infer_body([{"name": "logits"}])).json()
    logits = plain["outputs"][0]["data"]
    answer = post(bridge, "/v2/models/sentiment/infer", infer_body(
        [{"name": "scores", "parameters": {"classification": 1, "binary_data": True}}], raw_scores=True))
    assert answer.status_code == 200
    header_length = int(answer.headers["Inference-Header-Content-Length"])
    raw = answer.content[header_length:]
    elements, offset = [], 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "little")
        elements.append(raw[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    rows = [logits[i : i + len(LABELS)] for i in range(0, len(logits), len(LABELS))]
    assert elements == [f"{row[best_first(row, 1)[0]]:f}:{best_first(row, 1)[0]}:{LABELS[best_first(row, 1)[0]]}"
                        for row in rows]


@pytest.mark.parametrize("output, field", [
    ({"name": "scores", "parameters": {"classification": 0}}, "outputs.scores.parameters.classification"),
    ({"name": "scores", "parameters": {"classification": 1.5}}, "outputs.scores.parameters.classification"),
    ({"name": "label", "parameters": {"classification": 1}}, "outputs.label.parameters.classification"),
])
def test_v2_a_bad_classification_is_400_naming_it(bridge, output, field):
    answer = post(bridge, "/v2/models/sentiment/infer", infer_body([output]))
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_ARGUMENT" and answer.json()["field"] == field


# the OpenAPI document -------------------------------------------------------------------------------------

def test_the_document_describes_top_k_raw_scores_top_and_classification(bridge):
    document = requests.get(f"{bridge.url}/openapi.json", timeout=10).json()
    schemas = document["components"]["schemas"]
    assert {"top_k", "raw_scores"} <= set(schemas["PredictIn"]["properties"])
    assert schemas["PredictIn"]["properties"]["top_k"]["minimum"] == 0
    assert "classification" in str(schemas["InferRequestedOutputIn"]["properties"]["parameters"])
    assert "raw_scores" in str(schemas["InferRequestIn"]["properties"]["parameters"])
    # what /predict answers with top fits the document's PredictionOut
    body = post(bridge, "/predict", {"text": TEXTS[0], "top_k": 2, "raw_scores": True}).json()
    schema = {"$ref": "#/components/schemas/PredictionOut", "components": document["components"]}
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    top_item = {"$ref": "#/components/schemas/PredictionOut", "components": document["components"]}
    with pytest.raises(jsonschema.ValidationError):  # the document does say what an item of top holds
        jsonschema.validate({**body, "top": [{"label": "x"}]}, top_item, cls=jsonschema.Draft202012Validator)
    in_schema = {"$ref": "#/components/schemas/PredictIn", "components": document["components"]}
    assert not jsonschema.Draft202012Validator(in_schema).is_valid({"text": "good", "top_k": -1})
