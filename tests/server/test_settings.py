"""The server's settings: flags and environment variables, removed settings refused by name, and what is
derived from the flags rather than set."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sentiment.common.removed import RemovedSetting
from server.settings import REMOVED, load_settings


@pytest.mark.parametrize("argv, environ, named", [
    (["--max-padding-ratio", "1.1"], {}, "--max-padding-ratio"),
    (["--no-warmup"], {}, "--no-warmup"),
    (["--chunk-tokens=96"], {}, "--chunk-tokens"),
    ([], {"SENTIMENT_MAX_QUEUE_SIZE": "256"}, "SENTIMENT_MAX_QUEUE_SIZE"),
    ([], {"SENTIMENT_DEVICE": "cpu"}, "SENTIMENT_DEVICE"),
])
def test_a_removed_flag_or_variable_stops_the_process_naming_its_replacement(monkeypatch, argv, environ, named):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RemovedSetting) as stopped:
        load_settings(argv)
    key = named.lstrip("-").removeprefix("SENTIMENT_").removeprefix("no-").lower().replace("-", "_")
    assert str(stopped.value) == f"{named} was removed: {REMOVED[key]}"


def test_the_bridges_variables_are_not_the_servers(monkeypatch):
    """SENTIMENT_BRIDGE_* share the server's prefix; a bridge variable is never read as a removed server one."""
    monkeypatch.setenv("SENTIMENT_BRIDGE_WORKERS", "2")
    assert load_settings([]).port == 50051


def test_the_process_exits_2_with_the_message_on_stderr(tiny_model_dir):
    result = subprocess.run([sys.executable, "-m", "server.app", "--model", str(tiny_model_dir), "--max-windows", "4"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--max-windows was removed: a constant (32 windows" in result.stderr


@pytest.mark.parametrize("model, spec", [
    ("builtin", ("sentiment", "1", "builtin")),
    ("reviews=/models/reviews", ("reviews", "1", "/models/reviews")),
    ("reviews:3=/models/reviews", ("reviews", "3", "/models/reviews")),
])
def test_the_model_flag_names_the_model_and_its_version(model, spec):
    assert load_settings(["--model", model]).model_spec() == spec


@pytest.mark.parametrize("model", ["=builtin", "name:=builtin", "name="])
def test_a_malformed_model_flag_is_refused_at_start(model):
    with pytest.raises(ValueError, match="NAME:VERSION=SOURCE"):
        load_settings(["--model", model])


def test_derived_values_follow_their_flags():
    settings = load_settings(["--max-batch-size", "8", "--grace-seconds", "30"])
    policy = settings.core_policy()
    assert policy.batching.queue_size == 16 * 8  # 16 batches
    assert settings.lame_duck_seconds == 3.0 and load_settings(["--grace-seconds", "300"]).lame_duck_seconds == 5.0
    # a full PredictBatch of the longest texts fits, and never less than gRPC's usual 4 MiB
    assert load_settings(["--max-batch-texts", "1"]).max_message_bytes == 4 * 1024 * 1024
    assert load_settings(["--max-batch-texts", "512"]).max_message_bytes > 512 * 20_000 * 4


def test_the_project_keeps_forty_settings_at_most():
    """A flag is a choice a user makes: the server and the bridge together have 40 (README, Configuration)."""
    from rest_bridge.settings import BridgeSettings
    from server.settings import ServerSettings

    assert (len(ServerSettings.model_fields), len(BridgeSettings.model_fields)) == (23, 17)


def test_model_repeats_and_the_model_control_and_budget_flags(monkeypatch):
    settings = load_settings(["--model", "builtin", "--model", "reviews=/models/reviews", "--model-control", "poll",
                              "--model-memory-mb", "2048"])
    assert settings.model == ["builtin", "reviews=/models/reviews"] and settings.model_spec() == ("sentiment", "1", "builtin")
    assert settings.model_entries() == [("sentiment", "1", "builtin", False), ("reviews", "1", "/models/reviews", True)]
    assert (settings.model_control, settings.model_memory_mb) == ("poll", 2048)
    monkeypatch.setenv("SENTIMENT_MODEL_CONTROL", "explicit")
    assert load_settings([]).model_control == "explicit" and load_settings([]).model_control != "none"
    with pytest.raises(ValueError):
        load_settings(["--model-control", "sometimes"])
