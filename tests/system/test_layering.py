"""The package layering the README draws: the client library depends on the contract alone, the bridge
on the client library, the server never on the training code; what they share is in sentiment.common."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the project's packages it must never import
FORBIDDEN = {
    "clients": {"server", "rest_bridge", "training", "bench", "launcher"},
    "rest_bridge": {"server", "training", "bench", "launcher"},
    "server": {"training", "rest_bridge", "clients", "bench", "launcher"},
    "sentiment": {"server", "rest_bridge", "clients", "training", "bench", "launcher"},
    "launcher": {"server", "rest_bridge", "clients", "training", "bench"},
}

# The layers inside server/, top to bottom: a text's walk goes transport -> repository (which model answers) ->
# core -> batching -> engines, and nothing calls back up. Each layer may import those below it (and server's shared modules: errors,
# settings' policies, hardware, builtin_model, metrics), never one above.
SERVER_LAYERS = ["transport", "repository", "core", "batching", "engines"]


def imported_modules(path: Path) -> set[str]:
    """Full dotted names of every module a file imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def server_layer_violations() -> list[str]:
    found = []
    for index, layer in enumerate(SERVER_LAYERS):
        above = SERVER_LAYERS[:index]
        for path in sorted((ROOT / "server" / layer).rglob("*.py")):
            for module in sorted(imported_modules(path)):
                parts = module.split(".")
                if parts[0] == "server" and len(parts) > 1 and parts[1] in above:
                    found.append(f"{path.relative_to(ROOT)} imports {module} (a layer above {layer})")
    return found


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


def test_inside_the_server_no_layer_imports_one_above_it():
    assert server_layer_violations() == []


def test_the_layer_scan_catches_an_engine_importing_the_core(tmp_path, monkeypatch):
    engines = tmp_path / "server" / "engines"
    engines.mkdir(parents=True)
    (tmp_path / "server" / "transport").mkdir()
    (tmp_path / "server" / "core").mkdir()
    (tmp_path / "server" / "batching").mkdir()
    (engines / "bad.py").write_text("def later():\n    from server.core.types import Prediction\n")
    import tests.system.test_layering as layering

    monkeypatch.setattr(layering, "ROOT", tmp_path)
    assert layering.server_layer_violations() == [
        "server/engines/bad.py imports server.core.types (a layer above engines)",
        "server/engines/bad.py imports server.core.types.Prediction (a layer above engines)"]


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
    loaded = loaded_after("import server.app")
    assert "server" in loaded and "training" not in loaded


def test_the_launcher_loads_neither_the_server_nor_torch():
    loaded = loaded_after("import launcher.serve_all")
    assert "launcher" in loaded and not loaded & {"server", "training", "torch"}


# Small modules with one job each (issue 26): the service's two packages keep every module and function short
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 60


def oversized(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(ROOT)
        if len(source.splitlines()) > MAX_MODULE_LINES:
            found.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return found


@pytest.mark.parametrize("package", ["server", "rest_bridge"])
def test_no_module_over_300_lines_and_no_function_over_60(package):
    assert oversized(ROOT / package) == []


def test_the_size_check_sees_a_long_function(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert oversized(tmp_path) == ["long.py:1 long: 62 lines"]
