"""What the server reads from --model and the repository's folders, before loading anything: models, versions,
version policies, the default model, and the memory a version is estimated to take."""

from __future__ import annotations

import json

import pytest

from server.errors import ModelLoadError, NotFound
from server.repository import memory
from server.repository.layout import VersionPolicy, read_catalogue, read_policy
from server.settings import load_settings


def folders(root, layout: dict[str, list[str]]):
    """Empty version folders (with a config.json where a checkpoint would be): enough to read a layout."""
    for model, versions in layout.items():
        (root / model).mkdir(parents=True)
        for version in versions:
            (root / model / version).mkdir()
            (root / model / version / "config.json").write_text("{}")
    return root


def catalogue(*entries: str):
    return read_catalogue(load_settings([arg for entry in entries for arg in ("--model", entry)]).model_entries())


def test_a_bare_directory_is_a_repository_of_model_folders(tmp_path):
    folders(tmp_path, {"sentiment": ["1", "2", "10"], "reviews": ["3"], ".hidden": ["1"]})
    (tmp_path / "sentiment" / ".11").mkdir()  # a version still being copied
    (tmp_path / "sentiment" / "notes").mkdir()
    found = catalogue(str(tmp_path))
    assert list(found.models) == ["reviews", "sentiment"] and found.default == "reviews"
    assert list(found.get("sentiment").versions()) == ["1", "10", "2"]
    assert list(found.get("sentiment").wanted()) == ["10"]  # the latest, by number
    with pytest.raises(NotFound, match="no model 'other'"):
        found.get("other")


def test_checkpoints_and_named_model_folders_beside_a_repository(tmp_path):
    folders(tmp_path / "repo", {"reviews": ["1"]})
    folders(tmp_path, {"tickets": ["4", "5"]})
    found = catalogue("builtin", f"tickets={tmp_path / 'tickets'}", f"news:7={tmp_path / 'repo' / 'reviews' / '1'}",
                      str(tmp_path / "repo"))
    assert list(found.models) == ["sentiment", "tickets", "news", "reviews"] and found.default == "sentiment"
    assert found.get("sentiment").wanted() == {"1": "builtin"}
    assert list(found.get("tickets").wanted()) == ["5"]
    assert found.get("news").wanted() == {"7": str(tmp_path / "repo" / "reviews" / "1")}


def test_two_models_of_one_name_are_refused(tmp_path):
    folders(tmp_path, {"sentiment": ["1"]})
    with pytest.raises(ModelLoadError, match="two models are named 'sentiment'"):
        catalogue("builtin", str(tmp_path))


def test_the_environment_variable_takes_one_value_or_several(monkeypatch):
    monkeypatch.setenv("SENTIMENT_MODEL", "sentiment:1=builtin")
    assert load_settings([]).model == ["sentiment:1=builtin"]
    monkeypatch.setenv("SENTIMENT_MODEL", "builtin, reviews=/models/reviews")
    assert load_settings([]).model == ["builtin", "reviews=/models/reviews"]
    assert load_settings(["--model", "a=/x", "--model", "b=/y"]).model == ["a=/x", "b=/y"]  # flags win


@pytest.mark.parametrize("policy, available, selected", [
    (None, ["1", "2", "3"], ["3"]),
    ({"latest": {"num_versions": 2}}, ["1", "2", "3"], ["2", "3"]),
    ({"specific": {"versions": [1, 3]}}, ["1", "2", "3"], ["1", "3"]),
    ({"specific": {"versions": [4]}}, ["1", "2", "3"], []),
    ({"all": {}}, ["2", "1"], ["1", "2"]),
])
def test_version_policies_select_as_tritons_do(tmp_path, policy, available, selected):
    if policy is not None:
        (tmp_path / "version_policy.json").write_text(json.dumps(policy))
    assert read_policy(tmp_path).select(available) == selected


@pytest.mark.parametrize("text", ['{"latest": {"num_versions": 0}}', '{"newest": {}}', "[1]", "not json",
                                  '{"specific": {"versions": []}}'])
def test_a_malformed_policy_is_refused_saying_what_to_write(tmp_path, text):
    (tmp_path / "version_policy.json").write_text(text)
    with pytest.raises(ModelLoadError, match="not a version policy.*latest"):
        read_policy(tmp_path)


def test_the_default_policy_is_the_latest_version():
    assert VersionPolicy().describe() == "the latest 1"


def test_the_memory_estimate_reads_the_safetensors_header_and_prices_the_engines(tiny_model_dir):
    import torch
    from transformers import AutoModelForSequenceClassification

    parameters = sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).parameters())
    assert memory.parameter_count(str(tiny_model_dir)) == parameters
    assert memory.parameter_count("some/hub-id") is None
    torch_fp32 = memory.estimate_bytes(str(tiny_model_dir), engine="torch", dtype="float32", cuda=False, explains=True,
                                       max_batch_tokens=8192)
    onnx_int8 = memory.estimate_bytes(str(tiny_model_dir), engine="onnxruntime", dtype="int8", cuda=False,
                                      explains=True, max_batch_tokens=8192)
    activations = 8192 * 128 * 4 * memory.ACTIVATION_COPIES  # the widest layer: 4 x its hidden size of 32
    assert torch_fp32 == 4 * parameters + activations + memory.FIXED_BYTES
    assert onnx_int8 == (4 + 1 + 4) * parameters + activations + memory.FIXED_BYTES  # checkpoint, int8, re-check
