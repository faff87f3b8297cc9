from __future__ import annotations

import pytest

from tests.support.ci_skips import pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401
from tests.support.helpers import ServerThread, build_tiny_model, server_settings


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def classifier(tiny_model_dir):
    from server.core.classifier import SequenceClassifier

    return SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def grpc_server(tiny_model_dir, classifier):
    with ServerThread(server_settings(tiny_model_dir), classifier) as running:
        yield running


@pytest.fixture
def client(grpc_server):
    from clients import SentimentClient

    with SentimentClient(grpc_server.target, timeout=10) as c:
        yield c
