from __future__ import annotations

import pytest

from tests.ci_skips import pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary  # noqa: F401
from tests.helpers import ServerThread, build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def classifier(tiny_model_dir):
    from server.engines.loading import SequenceClassifier

    return SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32")


def server_settings(model_dir, **overrides):
    from server.settings import ServerSettings

    values = dict(model=str(model_dir), host="127.0.0.1", port=0, device="cpu", dtype="float32",
                  max_batch_texts=16, max_text_chars=2000, warmup=True, grace_seconds=2.0, metrics_port=0)
    values.update(overrides)
    return ServerSettings(**values)


@pytest.fixture(scope="module")
def grpc_server(tiny_model_dir, classifier):
    with ServerThread(server_settings(tiny_model_dir), classifier) as running:
        yield running


@pytest.fixture
def client(grpc_server):
    from clients import SentimentClient

    with SentimentClient(grpc_server.target, timeout=10) as c:
        yield c
