"""The README stays true: every setting is documented with its flag and environment variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rest_bridge.settings import BridgeSettings
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("settings, prefix", [(ServerSettings, "SENTIMENT_"), (BridgeSettings, "SENTIMENT_BRIDGE_")])
def test_every_setting_is_in_the_readme_configuration_table(settings, prefix):
    for name in settings.model_fields:
        assert f"`--{name.replace('_', '-')}`" in README, name
        assert f"`{prefix}{name.upper()}`" in README, name


def test_environment_variables_and_flags_both_configure_the_server(monkeypatch):
    from server.settings import load_settings

    monkeypatch.setenv("SENTIMENT_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SENTIMENT_PORT", "1234")
    settings = load_settings(["--port", "4321", "--no-access-log"])
    assert (settings.max_batch_size, settings.port, settings.access_log) == (7, 4321, False)


RELIABILITY = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()


def test_every_test_named_in_the_reliability_doc_exists():
    import ast
    import re

    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", RELIABILITY)
    assert len(named) > 40
    for module, test in named:
        tree = ast.parse((ROOT / module).read_text())
        assert test in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, f"{module}::{test}"


def test_every_promise_in_the_reliability_doc_names_a_test():
    table = RELIABILITY[RELIABILITY.index("| promise | how | tests that hold it |"):]
    rows = [line for line in table[: table.index("\n\n")].splitlines()[2:]]
    assert len(rows) >= 20
    for row in rows:
        assert re.search(r"`tests/[\w/]+/test_\w+\.py::", row.rsplit(" | ", 1)[1]), row
