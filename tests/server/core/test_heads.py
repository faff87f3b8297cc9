"""Every kind of classification head: single-label softmax, multi-label sigmoids, regression values."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from clients import SentimentClient
from server.engines import heads
from tests.support.helpers import server_settings
from tests.support.helpers import ServerThread, build_tiny_model

EMOTIONS = ["anger", "fear", "joy", "love", "sadness", "surprise"]
TEXTS = ["i love this film", "the service was terrible", "okay day"]


class Config:
    def __init__(self, num_labels, problem_type=None):
        self.num_labels, self.problem_type = num_labels, problem_type


@pytest.mark.parametrize("num_labels, declared, kind", [
    (3, None, heads.SINGLE_LABEL),
    (1, None, heads.REGRESSION),
    (6, "multi_label_classification", heads.MULTI_LABEL),
    (1, "regression", heads.REGRESSION),
    (2, "single_label_classification", heads.SINGLE_LABEL),
])
def test_the_kind_of_head_comes_from_problem_type_then_num_labels(num_labels, declared, kind):
    assert heads.problem_type(Config(num_labels, declared)) == kind


def test_a_regression_head_with_several_outputs_is_refused_at_load():
    from server.errors import ModelLoadError

    with pytest.raises(ModelLoadError):
        heads.problem_type(Config(3, "regression"))


def served(directory):
    from server.core.classifier import SequenceClassifier

    classifier = SequenceClassifier(str(directory), device="cpu", dtype="float32")
    return classifier, ServerThread(server_settings(directory, warmup=False), classifier)


@pytest.fixture(scope="module")
def multi_label(tmp_path_factory):
    directory = build_tiny_model(tmp_path_factory.mktemp("multi"), labels=EMOTIONS,
                                 problem_type="multi_label_classification", seed=3)
    classifier, server = served(directory)
    with server:
        yield classifier, server


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    directory = build_tiny_model(tmp_path_factory.mktemp("regression"), labels=["stars"], seed=4)
    classifier, server = served(directory)
    with server:
        yield classifier, server


def test_multi_label_scores_are_independent_sigmoids_and_every_label_past_the_threshold_is_predicted(multi_label):
    classifier, server = multi_label
    logits = classifier.predict_logits(TEXTS)
    with SentimentClient(server.target, timeout=10) as client:
        predictions = client.predict_batch(TEXTS)
        everything = client.predict(TEXTS[0], threshold=0.0)
        info = client.model_info()
    assert info.problem_type == "multi_label_classification" and info.labels == EMOTIONS
    for prediction, row in zip(predictions, logits):
        sigmoids = 1 / (1 + np.exp(-row))
        assert [prediction.scores[label] for label in EMOTIONS] == pytest.approx(list(sigmoids), abs=1e-5)
        assert sum(prediction.scores.values()) != pytest.approx(1.0, abs=1e-3)  # not a softmax
        assert prediction.predicted_labels == [l for l, p in zip(EMOTIONS, sigmoids) if p >= 0.5]
        assert prediction.label == EMOTIONS[int(row.argmax())] and prediction.class_id == int(row.argmax())
    assert everything.predicted_labels == EMOTIONS


def test_multi_label_over_the_bridge_lists_the_predicted_labels(multi_label):
    from tests.support.bridge import BridgeThread

    _, server = multi_label
    with BridgeThread(server.target) as bridge:
        body = requests.post(f"{bridge.url}/predict", json={"text": TEXTS[0], "threshold": 0.3}, timeout=10).json()
        bad = requests.post(f"{bridge.url}/predict", json={"text": TEXTS[0], "threshold": 2}, timeout=10)
        info = requests.get(f"{bridge.url}/v1/model", timeout=10).json()
    assert body["predicted_labels"] == [l for l in EMOTIONS if body["scores"][l] >= 0.3]
    assert "score" not in body
    assert bad.status_code == 422
    assert info["problem_type"] == "multi_label_classification"


def test_regression_returns_the_raw_value_and_no_probabilities(regression):
    classifier, server = regression
    logits = classifier.predict_logits(TEXTS)
    with SentimentClient(server.target, timeout=10) as client:
        predictions = client.predict_batch(TEXTS, return_logits=True)
        chunked = client.predict("good " * 150, truncation="chunk", return_windows=True)
        info = client.model_info()
    assert info.problem_type == "regression"
    for prediction, row in zip(predictions, logits):
        assert prediction.score == pytest.approx(float(row[0]), abs=1e-5)
        assert prediction.scores == {} and prediction.predicted_labels is None
        assert (prediction.label, prediction.class_id) == ("stars", 0)
    # read in windows, the value is the token-weighted mean of the windows' values
    weights = np.array([w.prediction.num_tokens - 2 for w in chunked.window_predictions], dtype=float)
    values = np.array([w.prediction.score for w in chunked.window_predictions])
    assert chunked.score == pytest.approx(float((values * weights).sum() / weights.sum()), abs=1e-5)


def test_regression_over_the_bridge_answers_score(regression):
    from tests.support.bridge import BridgeThread

    _, server = regression
    with BridgeThread(server.target) as bridge:
        body = requests.post(f"{bridge.url}/predict", json={"text": TEXTS[1]}, timeout=10).json()
    assert isinstance(body["score"], float) and body["scores"] == {} and body["predicted_class"] == 0
