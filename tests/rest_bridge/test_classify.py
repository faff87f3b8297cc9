"""vLLM's classification API on the bridge (``POST /classify``, ``/v1/classify``) and the OpenAI/vLLM shape of
``GET /v1/models``, over real sockets in front of a real gRPC server: a client that knows only vLLM's documented
fields gets vLLM's response shape, with the numbers /predict gives; what the server cannot do is refused naming
the field; errors take vLLM's ErrorResponse shape."""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.bridge import BridgeThread
from tests.support.helpers import LABELS, ServerThread, server_settings
from tests.support.repository import PROBE_TEXT, build_repository, reference_logits, repository_server

TEXTS = ["i love this film", "terrible food and a rude waiter", "it was fine"]
LONG = " ".join(["good"] * 200)  # far over the tiny model's 64 tokens
TOKEN = "classify-s3cret"


@pytest.fixture(scope="module")
def url(grpc_server):
    with BridgeThread(grpc_server.target) as running:
        yield running.url


@pytest.fixture(scope="module")
def limit(url):
    return requests.get(f"{url}/v1/model", timeout=10).json()["max_input_tokens"]


def classify(url: str, path: str = "/v1/classify", headers: dict | None = None, **body) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=30)


def predict(url: str, texts: list[str], **body) -> list[dict]:
    answer = requests.post(f"{url}/predict", json={"texts": texts, "return_logits": True, **body}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def assert_vllm_error(answer: requests.Response, status: int, param: str | None, error_type: str) -> None:
    """vLLM's ErrorResponse: {"error": {"message", "type", "param", "code": <HTTP status>}}."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["param"], error["type"], error["code"]) == (param, error_type, status), error
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("path", ["/classify", "/v1/classify"])
def test_a_client_using_only_vllms_fields_gets_vllms_response_with_predicts_numbers(url, path):
    started = int(time.time())
    answer = classify(url, path, model="sentiment", input=TEXTS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"id", "object", "created", "model", "data", "usage"}
    assert body["id"].startswith("classify-") and len(body["id"]) > len("classify-")
    assert body["object"] == "list" and body["model"] == "sentiment"
    assert isinstance(body["created"], int) and started <= body["created"] <= time.time() + 1
    expected = predict(url, TEXTS)
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    for item, prediction in zip(body["data"], expected):
        assert set(item) == {"index", "label", "probs", "num_classes"}
        assert item["num_classes"] == len(item["probs"]) == len(LABELS)
        assert all(isinstance(p, float) for p in item["probs"])
        assert sum(item["probs"]) == pytest.approx(1.0, abs=1e-5)
        assert item["label"] == LABELS[max(range(len(LABELS)), key=item["probs"].__getitem__)] == prediction["label"]
        assert item["probs"] == pytest.approx([prediction["scores"][label] for label in LABELS], abs=1e-6)
    tokens = sum(p["num_tokens"] for p in expected)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                             "prompt_tokens_details": None}


def test_use_activation_false_gives_the_raw_logits_and_one_string_one_entry(url):
    raw = classify(url, input=TEXTS, use_activation=False).json()["data"]
    for item, prediction in zip(raw, predict(url, TEXTS), strict=True):
        assert item["probs"] == pytest.approx(prediction["logits"], abs=1e-5)
    assert any(abs(sum(item["probs"]) - 1) > 1e-3 for item in raw)  # logits, not probabilities
    for activation in (True, None):
        probs = classify(url, input=TEXTS, use_activation=activation).json()["data"]
        assert all(sum(item["probs"]) == pytest.approx(1.0, abs=1e-5) for item in probs), activation
    one = classify(url, input=TEXTS[1]).json()
    assert [item["index"] for item in one["data"]] == [0]
    assert one["data"][0]["probs"] == pytest.approx(list(predict(url, [TEXTS[1]])[0]["scores"].values()), abs=1e-6)
    assert one["model"] == "sentiment"  # no model named: the server's default, by its name


def test_the_request_id_names_the_answer_and_a_header_wins_over_it(url):
    answer = classify(url, input="good", request_id="my-request-7")
    assert answer.json()["id"] == "classify-my-request-7" and answer.headers["X-Request-Id"] == "my-request-7"
    header = classify(url, headers={"X-Request-Id": "from-header"}, input="good", request_id="from-body")
    assert header.json()["id"] == "classify-from-header"
    assert classify(url, input="good").json()["id"] != classify(url, input="good").json()["id"]
    assert_vllm_error(classify(url, input="good", request_id="caf\u00e9"), 400, "request_id",
                      "BadRequestError")  # gRPC metadata is ASCII


def test_truncation_maps_null_minus_one_and_the_models_limit_and_refuses_other_lengths(url, limit):
    short = predict(url, [LONG], truncation="truncate")[0]
    assert short["truncated"] and short["num_tokens"] == limit
    for asked in (-1, limit):
        answer = classify(url, input=LONG, truncate_prompt_tokens=asked, truncation_side="right")
        assert answer.status_code == 200, (asked, answer.text)
        assert answer.json()["usage"]["prompt_tokens"] == limit
        assert answer.json()["data"][0]["probs"] == pytest.approx(list(short["scores"].values()), abs=1e-6)
    for asked in (0, 1, limit - 1, limit + 1, 10**9):
        assert_vllm_error(classify(url, input=LONG, truncate_prompt_tokens=asked), 400, "truncate_prompt_tokens",
                          "BadRequestError")
    assert_vllm_error(classify(url, input="good", truncate_prompt_tokens=-2), 400, "truncate_prompt_tokens",
                      "BadRequestError")
    assert_vllm_error(classify(url, input=LONG, truncation_side="left"), 400, "truncation_side", "BadRequestError")
    assert_vllm_error(classify(url, input="good", priority=1), 400, "priority", "BadRequestError")
    assert_vllm_error(classify(url, input="good", add_special_tokens=False), 400, "add_special_tokens",
                      "BadRequestError")
    assert classify(url, input="good", priority=0, add_special_tokens=True, user="u1").status_code == 200


def test_null_truncation_is_the_servers_long_text_setting(tiny_model_dir, classifier):
    """A server that refuses long texts by default: null refuses (as /predict without truncation), -1 cuts."""
    with ServerThread(server_settings(tiny_model_dir, long_text="reject"), classifier) as server, \
            BridgeThread(server.target) as bridge:
        assert_vllm_error(classify(bridge.url, input=["good", LONG]), 400, "input[1]", "BadRequestError")
        cut = classify(bridge.url, input=["good", LONG], truncate_prompt_tokens=-1)
        assert cut.status_code == 200, cut.text
        assert cut.json()["usage"]["prompt_tokens"] == 3 + 64


def test_texts_the_server_refuses_and_bodies_of_the_wrong_shape(url):
    assert_vllm_error(classify(url, input=""), 400, "input", "BadRequestError")
    assert_vllm_error(classify(url, input=["good", "  "]), 400, "input[1]", "BadRequestError")
    assert_vllm_error(classify(url, input=["good"] * 17), 400, "input", "BadRequestError")  # max_batch_texts 16
    wrong = [({}, "input"), ({"input": 5}, "input"), ({"input": [1, 2]}, "input"), ({"input": [[1, 2]]}, "input"),
             ({"input": "good", "use_activation": "no"}, "use_activation"),
             ({"input": "good", "truncation_side": "middle"}, "truncation_side")]
    for body, param in wrong:  # vLLM answers a validation error 400, naming the field without pydantic's branch names
        assert_vllm_error(requests.post(f"{url}/v1/classify", json=body, timeout=10), 400, param, "BadRequestError")
    assert requests.post(f"{url}/v1/classify", json=["good"], timeout=10).status_code == 400
    assert classify(url, input="good", encoding_format="float", cache_salt="x").status_code == 200  # ignored, as vLLM
    assert requests.post(f"{url}/v1/classify", data="input=good", timeout=10).status_code == 415


def test_v1_models_keeps_its_list_and_adds_openais_shape(url, limit):
    body = requests.get(f"{url}/v1/models", timeout=10).json()
    assert [m["name"] for m in body["models"]] == ["sentiment"]
    assert body["object"] == "list"
    [card] = body["data"]
    assert set(card) == {"id", "object", "created", "owned_by", "root", "parent", "max_model_len", "permission"}
    assert (card["id"], card["object"], card["owned_by"], card["max_model_len"]) == (
        "sentiment", "model", "sentiment-service", limit)
    assert isinstance(card["created"], int) and card["root"] == body["models"][0]["info"]["model_source"]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = build_repository(tmp_path_factory.mktemp("models"), {"sentiment": {1: 11}, "reviews": {4: 13}})
    references = {name: reference_logits(root / name / version) for name, version in (("sentiment", "1"),
                                                                                       ("reviews", "4"))}
    with repository_server(root, f"sentiment={root / 'sentiment'}", f"reviews={root / 'reviews'}") as server, \
            BridgeThread(server.target) as bridge:
        yield bridge.url, references


def test_model_names_the_served_model_that_answers_and_an_unknown_one_is_404(two_models):
    url, references = two_models
    for model in ("sentiment", "reviews"):
        answer = classify(url, input=[PROBE_TEXT], model=model, use_activation=False).json()
        assert answer["model"] == model
        assert answer["data"][0]["probs"] == pytest.approx(references[model], abs=1e-4), model
    assert classify(url, input=PROBE_TEXT).json()["model"] == "sentiment"  # the default model
    assert_vllm_error(classify(url, input=PROBE_TEXT, model="nope"), 404, "model", "NotFoundError")
    cards = requests.get(f"{url}/v1/models", timeout=10).json()["data"]
    assert [card["id"] for card in cards] == ["sentiment", "reviews"]


def test_classify_needs_the_bridges_token_when_it_has_one(grpc_server):
    with BridgeThread(grpc_server.target, auth_token=TOKEN) as bridge:
        for path in ("/classify", "/v1/classify"):
            for headers in ({}, {"Authorization": "Bearer another"}, {"Authorization": TOKEN}):
                refused = classify(bridge.url, path, headers=headers, input="good")
                assert_vllm_error(refused, 401, None, "AuthenticationError")
                assert refused.headers["WWW-Authenticate"] == "Bearer"
            answered = classify(bridge.url, path, headers={"Authorization": f"Bearer {TOKEN}"}, input="good")
            assert answered.status_code == 200 and answered.json()["data"][0]["label"] in LABELS
