from __future__ import annotations

import pytest
from hypothesis import settings

from tests.support.ci_skips import (in_ci, pytest_collectreport, pytest_runtest_logreport,  # noqa: F401
                                    pytest_sessionfinish, pytest_terminal_summary)
from tests.support.helpers import ServerThread, build_tiny_model, server_settings

# Property tests in CI: the same examples every run (derandomize: the seed comes from the test itself), so a
# CI failure reproduces on a developer's machine with CI=true and never comes and goes; no example database
# (a CI machine starts clean anyway). Elsewhere Hypothesis explores new examples each run.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if in_ci():
    settings.load_profile("ci")


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
