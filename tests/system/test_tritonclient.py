"""The real client of the Open Inference Protocol, tritonclient, against the server's gRPC port and the
bridge's HTTP port. It runs as a script (tests/support/tritonclient_probe.py) in the virtual environment that
`make install` builds for it (.venv-tritonclient, or $SENTIMENT_TRITONCLIENT_PYTHON): it needs protobuf 6
where this project needs 7, and its generated ``inference`` messages and the server's cannot be loaded
in one process anyway."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from clients import SentimentClient
from tests.support.helpers import LABELS
from tests.support.bridge import BridgeThread

PROBE = Path(__file__).resolve().parents[1] / "support" / "tritonclient_probe.py"
TRITON_PYTHON = Path(os.environ.get("SENTIMENT_TRITONCLIENT_PYTHON")
                     or Path(__file__).resolve().parents[2] / ".venv-tritonclient" / "bin" / "python")
TEXTS = ["i love this film", "terrible awful day", "okay", "the food was good but the service was bad", "great"]


def probe(protocol: str, url: str) -> dict:
    assert TRITON_PYTHON.exists(), f"{TRITON_PYTHON} is missing: `make install` builds it"
    result = subprocess.run([str(TRITON_PYTHON), str(PROBE), protocol, url, "sentiment", *TEXTS],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def direct(grpc_server):
    with SentimentClient(grpc_server.target) as client:
        return client.predict_batch(TEXTS)


@pytest.fixture(scope="module")
def bridge(grpc_server):
    with BridgeThread(grpc_server.target) as running:
        yield running.url.removeprefix("http://")


@pytest.fixture(scope="module", params=["grpc", "http", "http-json"])
def answers(request, grpc_server, bridge) -> tuple[str, dict]:
    return request.param, probe(request.param, grpc_server.target if request.param == "grpc" else bridge)


def test_health_and_metadata(answers):
    protocol, answer = answers
    assert answer["live"] is answer["ready"] is answer["model_ready"] is True
    assert answer["server_metadata"]["name"] == "sentiment-service"
    metadata = answer["model_metadata"]
    assert metadata["name"] == "sentiment" and metadata["versions"] == ["1"]
    # the gRPC client's JSON writes int64 as strings (protobuf's JSON mapping)
    shapes = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in metadata["outputs"]}
    assert shapes == {"label": ("BYTES", [-1]), "scores": ("FP32", [-1, 3]), "class_id": ("INT64", [-1]),
                      "logits": ("FP32", [-1, 3])}
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [("text", "BYTES"), ("text_pair", "BYTES")]


def test_a_batch_is_answered_in_order_matching_sentiment_v1(answers, direct):
    protocol, answer = answers
    assert answer["label"] == [p.label for p in direct]
    assert answer["class_id"] == [p.class_id for p in direct]
    assert answer["scores"] == [pytest.approx([p.scores[label] for label in LABELS], rel=1e-6) for p in direct]
    assert answer["logits_outputs"] == ["class_id", "logits"] and answer["logits_shape"] == [len(TEXTS), 3]


def test_wrong_input_name_and_datatype_are_refused_naming_the_input(answers):
    protocol, answer = answers
    refused = "StatusCode.INVALID_ARGUMENT" if protocol == "grpc" else "400"
    assert answer["wrong_name"]["status"] == refused and "'texts'" in answer["wrong_name"]["message"]
    assert answer["wrong_datatype"]["status"] == refused
    assert "'text' has datatype INT32" in answer["wrong_datatype"]["message"]
    assert answer["unknown_model"]["status"] == ("StatusCode.NOT_FOUND" if protocol == "grpc" else "404")


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A server of two models with the repository calls on (explicit), and a bridge in front."""
    from tests.support.repository import build_repository, repository_server

    root = build_repository(tmp_path_factory.mktemp("models"), {"sentiment": {1: 11}, "reviews": {2: 12}})
    with repository_server(root, f"sentiment={root / 'sentiment'}", f"reviews={root / 'reviews'}") as server, \
            BridgeThread(server.target) as bridge:
        yield server.target, bridge.url.removeprefix("http://")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_tritonclients_repository_calls_index_unload_and_load(repository, protocol):
    assert TRITON_PYTHON.exists(), f"{TRITON_PYTHON} is missing: `make install` builds it"
    grpc_target, http_target = repository
    result = subprocess.run([str(TRITON_PYTHON), str(PROBE), f"repository-{protocol}",
                             grpc_target if protocol == "grpc" else http_target, "reviews"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    states = lambda entries: {(e["name"], e["version"]): e["state"] for e in entries}  # noqa: E731
    assert states(answer["before"]) == {("sentiment", "1"): "READY", ("reviews", "2"): "READY"}
    assert states(answer["after_unload"])[("reviews", "2")] in ("UNLOADING", "UNAVAILABLE")
    assert states(answer["after_load"]) == {("sentiment", "1"): "READY", ("reviews", "2"): "READY"}
    assert answer["model_ready"] is True
