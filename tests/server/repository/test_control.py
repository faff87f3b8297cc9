"""Who may change what the server serves: the repository calls are refused unless --model-control allows them,
honour the server's token, and poll mode picks up a new version folder by itself."""

from __future__ import annotations

import time

import grpc
import pytest

from clients import SentimentClient, SentimentError
from clients.oip import InferenceClient
from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from server.repository.versions import Loader
from tests.support.helpers import build_tiny_model, wait_for
from tests.support.repository import (PROBE_TEXT, build_repository, copy_version, reference_logits, repository_server,
                                      which)

REPOSITORY_CALLS = [("RepositoryIndex", oip.RepositoryIndexRequest()),
                    ("RepositoryModelLoad", oip.RepositoryModelLoadRequest(model_name="sentiment")),
                    ("RepositoryModelUnload", oip.RepositoryModelUnloadRequest(model_name="sentiment"))]


def status_of(channel, method: str, request, metadata=()) -> str:
    try:
        getattr(oip_grpc.GRPCInferenceServiceStub(channel), method)(request, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


@pytest.mark.parametrize("method, request_message", REPOSITORY_CALLS, ids=[method for method, _ in REPOSITORY_CALLS])
def test_without_model_control_the_repository_calls_are_refused(grpc_server, method, request_message):
    with grpc.insecure_channel(grpc_server.target) as channel:
        assert status_of(channel, method, request_message) == "FAILED_PRECONDITION"
        metadata = oip_grpc.GRPCInferenceServiceStub(channel).ServerMetadata(oip.ServerMetadataRequest(), timeout=10)
        assert "model_repository" not in metadata.extensions  # no model_repository extension announced
    with SentimentClient(grpc_server.target) as client, pytest.raises(SentimentError) as refused:
        InferenceClient(client).repository_index()
    assert "--model-control explicit" in refused.value.message


def test_the_repository_calls_need_the_servers_token(tmp_path):
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}, "reviews": {1: 12}})
    with repository_server(root, auth_token="s3cret") as server, grpc.insecure_channel(server.target) as channel:
        token = (("authorization", "Bearer s3cret"),)
        for method, request_message in REPOSITORY_CALLS:
            assert status_of(channel, method, request_message) == "UNAUTHENTICATED"
        assert status_of(channel, "RepositoryIndex", oip.RepositoryIndexRequest(), token) == "OK"
        unload = oip.RepositoryModelUnloadRequest(model_name="sentiment")
        assert status_of(channel, "RepositoryModelUnload", unload, token) == "OK"  # not the default (reviews)
        load = oip.RepositoryModelLoadRequest(model_name="sentiment")
        assert status_of(channel, "RepositoryModelLoad", load, token) == "OK"


def test_load_parameters_other_than_tritonclients_are_refused(tmp_path):
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    with repository_server(root) as server, SentimentClient(server.target) as client:
        repository = InferenceClient(client)
        with pytest.raises(SentimentError) as refused:
            repository.load_model("sentiment", parameters={"config": '{"max_batch_size": 8}'})
        assert refused.value.code == "INVALID_ARGUMENT" and refused.value.field == "parameters.config"
        with pytest.raises(SentimentError) as unknown:
            repository.load_model("nope")
        assert unknown.value.code == "NOT_FOUND"
        index = repository.repository_index(ready=True)
        assert [(e.name, e.version, e.state) for e in index] == [("sentiment", "1", "READY")]


def test_poll_mode_loads_a_new_version_folder_and_leaves_a_broken_one_until_it_changes(tmp_path, monkeypatch):
    import server.repository.poll as poll

    monkeypatch.setattr(poll, "POLL_SECONDS", 0.1)
    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}})
    new = build_tiny_model(tmp_path / "spare", seed=12)
    references = {"1": reference_logits(root / "sentiment" / "1"), "2": reference_logits(new)}
    with repository_server(root, model_control="poll") as server, SentimentClient(server.target) as client:
        manager = server.running.manager
        copy_version(new, root / "sentiment", 2)
        server.call(poll.poll_once(manager))  # the poller would do the same within 0.1 s
        assert which(client.predict(PROBE_TEXT, return_logits=True).logits, references) == "2"
        loads = []
        monkeypatch.setattr(Loader, "start", _counting(Loader.start, loads))
        broken = root / "sentiment" / "3"
        broken.mkdir()
        (broken / "config.json").write_text("{")
        wait_for(lambda: ("sentiment", "3") in manager.failed, what="version 3 tried")
        tried = len(loads)
        for _ in range(3):
            server.call(poll.poll_once(manager))
        time.sleep(0.3)  # and three polls of the poller's own
        assert len(loads) == tried  # unchanged files are not tried again
        assert which(client.predict(PROBE_TEXT, return_logits=True).logits, references) == "2"
        (broken / "config.json").write_text("{ }")  # the files changed: tried again (and failing again)
        server.call(poll.poll_once(manager))
        assert len(loads) == tried + 1


def _counting(start, loads: list):
    async def counted(self, *args, **kwargs):
        loads.append(args[:2])
        return await start(self, *args, **kwargs)

    return counted
