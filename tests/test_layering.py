"""The package layering the README draws: the client library depends on the contract alone, the bridge
on the client library, the server never on the training code; what they share is in sentiment.common."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# package -> the project's packages it must never import
FORBIDDEN = {
    "clients": {"server", "rest_bridge", "training", "bench"},
    "rest_bridge": {"server", "training", "bench"},
    "server": {"training", "rest_bridge", "clients", "bench"},
    "sentiment": {"server", "rest_bridge", "clients", "training", "bench"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(imported_packages(path) & FORBIDDEN[package]):
            found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_it_must_not_know(package):
    assert violations(package) == []


def test_the_scan_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("import os\n\ndef later():\n    from server.core.classifier import SequenceClassifier\n    import training.builtin\n")
    assert imported_packages(source) == {"os", "server", "training"}


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_bridge_and_the_clients_load_without_the_server():
    loaded = loaded_after("import rest_bridge.app, rest_bridge.main, clients, clients.cli, clients.oip")
    assert "rest_bridge" in loaded and "clients" in loaded
    assert not loaded & {"server", "training", "torch"}


def test_the_server_loads_without_the_training_code():
    loaded = loaded_after("import server.app, launcher.serve_all")
    assert "server" in loaded and "training" not in loaded
