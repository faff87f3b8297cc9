"""The bridge's own bearer token (``--auth-token``) on every route that reaches the backend for a caller:
``POST /explain`` and each ``/v1/jobs`` route (create, status, result, delete), in front of a real gRPC
server. /predict, /v1/model and /v2 are tests/server/transport/test_security.py's and test_oip.py's."""

from __future__ import annotations

import pytest
import requests

from tests.support.bridge import BridgeThread
from tests.support.helpers import wait_for

TOKEN = "edge-s3cret"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
# no header, another token, the token without its scheme, the scheme alone
WRONG = [{}, {"Authorization": "Bearer another"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "}]
CSV_TEXT = "id,text\n1,i love this film\n2,terrible food\n"


@pytest.fixture(scope="module")
def secured(grpc_server, tmp_path_factory):
    with BridgeThread(grpc_server.target, auth_token=TOKEN, jobs_dir=tmp_path_factory.mktemp("jobs")) as running:
        yield running.url


def assert_refused(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_explain_needs_the_bridges_token(secured):
    for headers in WRONG:
        assert_refused(requests.post(f"{secured}/explain", json={"text": "i love this"}, headers=headers, timeout=30))
    answered = requests.post(f"{secured}/explain", json={"text": "i love this"}, headers=RIGHT, timeout=60)
    assert answered.status_code == 200, answered.text
    assert [w["word"] for w in answered.json()["words"]] == ["i", "love", "this"]


def test_every_jobs_route_needs_the_bridges_token(secured):
    """Each route is refused without the right token while the job exists (so a 401 is the token's answer,
    not a 404), and answers with it: create 202, status 200, result 200, delete 204."""
    upload = lambda headers: requests.post(f"{secured}/v1/jobs", files={"file": ("r.csv", CSV_TEXT)},  # noqa: E731
                                           headers=headers, timeout=30)
    for headers in WRONG:
        assert_refused(upload(headers))
    created = upload(RIGHT)
    assert created.status_code == 202, created.text
    job = f"{secured}/v1/jobs/{created.json()['id']}"
    wait_for(lambda: requests.get(job, headers=RIGHT, timeout=10).json()["state"] == "done", what="job done")

    for headers in WRONG:
        assert_refused(requests.get(job, headers=headers, timeout=10))
        assert_refused(requests.get(f"{job}/result", headers=headers, timeout=10))
        assert_refused(requests.delete(job, headers=headers, timeout=10))
    status = requests.get(job, headers=RIGHT, timeout=10)
    assert status.status_code == 200 and status.json()["done"] == 2  # the refused deletes removed nothing
    result = requests.get(f"{job}/result", headers=RIGHT, timeout=10)
    assert result.status_code == 200 and len(result.text.splitlines()) == 2
    assert requests.delete(job, headers=RIGHT, timeout=10).status_code == 204
    assert requests.get(job, headers=RIGHT, timeout=10).status_code == 404


def test_the_pages_and_probes_stay_public(secured):
    """What a browser and a load balancer reach without the token: the pages (which ask for it) and the probes."""
    for path in ("/", "/score", "/healthz", "/readyz", "/openapi.json"):
        assert requests.get(f"{secured}{path}", timeout=10).status_code == 200, path
