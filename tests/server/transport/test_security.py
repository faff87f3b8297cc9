"""TLS, mutual TLS and bearer tokens, with a CA the test makes; clients without them are refused."""

from __future__ import annotations

import pytest
import requests

from clients import SentimentClient, SentimentError
from tests.support.certs import make_pki
from tests.support.helpers import server_settings
from tests.support.helpers import ServerThread
from tests.support.helpers import metric_samples
from tests.support.bridge import BridgeThread


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    paths = make_pki(directory)
    paths["other_ca"] = make_pki(tmp_path_factory.mktemp("other-pki"), ca_name="other-ca")["ca"]
    return paths


def refused(client: SentimentClient) -> str:
    with pytest.raises(SentimentError) as error:
        client.predict("hello", timeout=5)
    return error.value.code


def test_tls_server_accepts_clients_that_trust_its_ca_only(tiny_model_dir, classifier, pki):
    settings = server_settings(tiny_model_dir, tls_cert=pki["server_cert"], tls_key=pki["server_key"])
    with ServerThread(settings, classifier) as server:
        with SentimentClient(f"localhost:{server.port}", ca_cert=str(pki["ca"])) as client:
            assert client.predict("i love this").label
        with SentimentClient(f"localhost:{server.port}", ca_cert=str(pki["other_ca"]), retries=False) as client:
            assert refused(client) == "UNAVAILABLE"
        with SentimentClient(f"localhost:{server.port}", retries=False) as plaintext:
            assert refused(plaintext) == "UNAVAILABLE"


def test_mutual_tls_requires_a_client_certificate(tiny_model_dir, classifier, pki):
    settings = server_settings(tiny_model_dir, tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                               tls_client_ca=pki["ca"])
    with ServerThread(settings, classifier) as server:
        target = f"127.0.0.1:{server.port}"
        with SentimentClient(target, ca_cert=str(pki["ca"]), client_cert=str(pki["client_cert"]),
                             client_key=str(pki["client_key"])) as client:
            assert client.predict("i love this").label
        with SentimentClient(target, ca_cert=str(pki["ca"]), retries=False) as no_cert:
            assert refused(no_cert) == "UNAVAILABLE"


def test_bearer_token_is_required_except_for_health_checks(tiny_model_dir, classifier):
    with ServerThread(server_settings(tiny_model_dir, auth_token="s3cret"), classifier) as server:
        with SentimentClient(server.target, token="s3cret") as client:
            assert client.predict("i love this").label
            assert [r.prediction is not None for r in client.stream(["good", "bad"])] == [True, True]
        for token in (None, "wrong"):
            with SentimentClient(server.target, token=token) as client:
                assert refused(client) == "UNAUTHENTICATED"
                with pytest.raises(SentimentError) as error:
                    list(client.stream(["good"]))
                assert error.value.code == "UNAUTHENTICATED"
                with pytest.raises(SentimentError):
                    client.model_info()
                assert client.health() == "SERVING"  # probes need no token
        # refused calls never reach the servicers, and are still counted by method and code
        samples = metric_samples(requests.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=10).text)
        assert samples[("sentiment_grpc_requests_total", (("code", "UNAUTHENTICATED"), ("method", "Predict")))] == 2
        assert samples[("sentiment_grpc_requests_total", (("code", "UNAUTHENTICATED"), ("method", "PredictStream")))] == 2


def test_bridge_checks_its_own_token_and_speaks_mtls_with_a_token_upstream(tiny_model_dir, classifier, pki):
    settings = server_settings(tiny_model_dir, tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                               tls_client_ca=pki["ca"], auth_token="upstream")
    with ServerThread(settings, classifier) as server, BridgeThread(
            f"127.0.0.1:{server.port}", auth_token="edge", backend_token="upstream", backend_ca_cert=pki["ca"],
            backend_client_cert=pki["client_cert"], backend_client_key=pki["client_key"]) as bridge:
        url = f"{bridge.url}/predict"
        ok = requests.post(url, json={"text": "i love this"}, headers={"Authorization": "Bearer edge"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["label"]
        for headers in ({}, {"Authorization": "Bearer upstream"}):
            denied = requests.post(url, json={"text": "i love this"}, headers=headers, timeout=10)
            assert denied.status_code == 401 and denied.json()["error"]["code"] == "UNAUTHENTICATED"
        assert requests.get(f"{bridge.url}/v1/model", timeout=10).status_code == 401
        assert requests.get(f"{bridge.url}/readyz", timeout=10).status_code == 200  # probes need no token
