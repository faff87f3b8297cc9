"""The bridge in front of a server of several models: every route that predicts takes a model and is answered by
it, the model list and readiness name them all, and the repository calls go through (Triton's REST shapes)."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.bridge import BridgeThread
from tests.support.helpers import wait_for
from tests.support.repository import PROBE_TEXT, build_repository, reference_logits, repository_server


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two models given by name (``NAME=FOLDER``, sentiment the default), a server on them with the repository
    calls on, and a bridge in front."""
    root = build_repository(tmp_path_factory.mktemp("models"), {"sentiment": {1: 11}, "reviews": {4: 13}})
    references = {"sentiment": reference_logits(root / "sentiment" / "1"), "reviews": reference_logits(root / "reviews" / "4")}
    with repository_server(root, f"sentiment={root / 'sentiment'}", f"reviews={root / 'reviews'}") as server, \
            BridgeThread(server.target) as bridge:
        yield bridge.url, references


def predict(url: str, **body) -> requests.Response:
    return requests.post(f"{url}/predict", json={"text": PROBE_TEXT, "return_logits": True, **body}, timeout=30)


def test_predict_is_answered_by_the_model_named_and_concurrent_requests_share_calls_only_within_one(models):
    url, references = models
    assert predict(url).json()["logits"] == pytest.approx(references["sentiment"], abs=1e-4)
    assert predict(url, model="reviews").json()["logits"] == pytest.approx(references["reviews"], abs=1e-4)
    assert predict(url, model="reviews", model_version="4").status_code == 200
    names = ["sentiment", "reviews"] * 16
    with ThreadPoolExecutor(32) as pool:  # one-text requests that arrive together leave in shared calls
        answers = list(pool.map(lambda name: predict(url, model=name).json()["logits"], names))
    for name, logits in zip(names, answers):
        assert logits == pytest.approx(references[name], abs=1e-4), name
    batch = requests.post(f"{url}/predict", json={"texts": [PROBE_TEXT], "return_logits": True, "model": "reviews"},
                          timeout=30)
    assert batch.json()["predictions"][0]["logits"] == pytest.approx(references["reviews"], abs=1e-4)


def test_a_model_or_version_not_served_is_404(models):
    url, _ = models
    for body in ({"model": "nope"}, {"model": "reviews", "model_version": "1"}):
        answer = predict(url, **body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "NOT_FOUND"), body
    assert requests.get(f"{url}/v1/model", params={"model": "nope"}, timeout=10).status_code == 404
    explained = requests.post(f"{url}/explain", json={"text": "good", "model": "nope"}, timeout=30)
    assert explained.status_code == 404


def test_explain_the_model_info_the_list_and_readiness_name_every_model(models):
    url, _ = models
    assert requests.post(f"{url}/explain", json={"text": "good film", "model": "reviews", "steps": 4},
                         timeout=30).json()["words"]
    info = requests.get(f"{url}/v1/model", params={"model": "reviews"}, timeout=10).json()
    assert (info["name"], info["version"]) == ("reviews", "4")
    assert requests.get(f"{url}/v1/model", timeout=10).json()["name"] == "sentiment"
    listed = requests.get(f"{url}/v1/models", timeout=10).json()["models"]
    assert [(m["name"], m["version"], m["state"], m["unversioned"]) for m in listed] == [
        ("sentiment", "1", "READY", True), ("reviews", "4", "READY", True)]
    assert requests.get(f"{url}/readyz", timeout=10).json()["models"] == [
        {"name": "sentiment", "version": "1", "state": "READY"}, {"name": "reviews", "version": "4", "state": "READY"}]
    for name, version in (("sentiment", "1"), ("reviews", "4")):
        metadata = requests.get(f"{url}/v2/models/{name}", timeout=10).json()
        assert metadata["versions"] == [version]
        inferred = requests.post(f"{url}/v2/models/{name}/infer", json={"inputs": [
            {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}]}, timeout=30).json()
        assert (inferred["model_name"], inferred["model_version"]) == (name, version)


def test_a_file_scoring_job_is_scored_by_the_model_named(models):
    url, _ = models
    upload = lambda model: requests.post(f"{url}/v1/jobs", files={"file": ("t.csv", io.BytesIO(b"text\ngood\nbad\n"))},  # noqa: E731
                                         data={"model": model}, timeout=30)
    assert upload("nope").status_code == 404  # refused at once, before any job exists
    created = upload("reviews")
    assert created.status_code == 202 and created.json()["model"] == "reviews"
    job = created.headers["Location"]
    done = wait_for(lambda: (lambda s: s if s["state"] == "done" else None)(requests.get(f"{url}{job}", timeout=10).json()),
                    what="the job done")
    assert done["done"] == 2 and done["errors"] == 0


def test_the_repository_calls_through_the_bridge_in_tritons_rest_shapes(models):
    url, references = models
    index = requests.post(f"{url}/v2/repository/index", timeout=10)  # tritonclient sends no body
    assert index.status_code == 200
    assert {(e["name"], e["version"], e["state"]) for e in index.json()} == {("sentiment", "1", "READY"),
                                                                            ("reviews", "4", "READY")}
    unloaded = requests.post(f"{url}/v2/repository/models/reviews/unload",
                             json={"parameters": {"unload_dependents": False}}, timeout=30)
    assert (unloaded.status_code, unloaded.json()) == (200, {})
    assert predict(url, model="reviews").status_code == 404
    ready_only = requests.post(f"{url}/v2/repository/index", json={"ready": True}, timeout=10).json()
    assert [(e["name"], e["state"]) for e in ready_only] == [("sentiment", "READY")]
    assert requests.post(f"{url}/v2/repository/models/reviews/load", data="{}", timeout=60).status_code == 200
    assert predict(url, model="reviews").json()["logits"] == pytest.approx(references["reviews"], abs=1e-4)
    default = requests.post(f"{url}/v2/repository/models/sentiment/unload", timeout=10)
    assert (default.status_code, default.json()["code"]) == (400, "FAILED_PRECONDITION")
    assert "default model" in default.json()["error"]
    bad = requests.post(f"{url}/v2/repository/index", json={"ready": "yes"}, timeout=10)
    assert (bad.status_code, bad.json()["code"]) == (422, "UNPROCESSABLE_ENTITY")


def test_without_model_control_the_repository_routes_answer_400_and_need_the_token(grpc_server):
    with BridgeThread(grpc_server.target) as bridge:
        refused = requests.post(f"{bridge.url}/v2/repository/index", timeout=10)
        assert (refused.status_code, refused.json()["code"]) == (400, "FAILED_PRECONDITION")
        assert "--model-control" in refused.json()["error"]
    with BridgeThread(grpc_server.target, auth_token="t0ken") as bridge:
        for method, path in (("POST", "/v2/repository/index"), ("POST", "/v2/repository/models/sentiment/load"),
                             ("POST", "/v2/repository/models/sentiment/unload"), ("GET", "/v1/models")):
            answer = requests.request(method, f"{bridge.url}{path}", timeout=10)
            assert answer.status_code == 401, path
        token = {"Authorization": "Bearer t0ken"}
        assert requests.get(f"{bridge.url}/v1/models", headers=token, timeout=10).status_code == 200
