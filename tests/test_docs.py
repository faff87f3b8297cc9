"""The README stays true: every setting is documented with its flag and environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from rest_bridge.settings import BridgeSettings
from server.settings import ServerSettings

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("settings, prefix", [(ServerSettings, "SENTIMENT_"), (BridgeSettings, "SENTIMENT_BRIDGE_")])
def test_every_setting_is_in_the_readme_configuration_table(settings, prefix):
    for name in settings.model_fields:
        assert f"`--{name.replace('_', '-')}`" in README, name
        assert f"`{prefix}{name.upper()}`" in README, name


def test_environment_variables_and_flags_both_configure_the_server(monkeypatch):
    from server.settings import load_settings

    monkeypatch.setenv("SENTIMENT_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SENTIMENT_PORT", "1234")
    settings = load_settings(["--port", "4321", "--no-reflection"])
    assert (settings.max_batch_size, settings.port, settings.reflection) == (7, 4321, False)
