"""The CI skip guard (tests/support/ci_skips.py), and the Hypothesis profile CI runs with (tests/conftest.py),
each run on a small suite of its own in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SUITE = '''
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="no CUDA device")
def test_needs_a_gpu():
    pass

def test_skips_itself():
    pytest.skip("{reason}")
'''


def pytest_in(tmp_path, *args: str, ci: str | None,
              plugin: str = "tests.support.ci_skips") -> subprocess.CompletedProcess:
    """pytest on files of ``tmp_path`` with ``plugin``, in a subprocess, with or without ``CI``."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", plugin, "-p", "no:cacheprovider", "-q", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def run_suite(tmp_path, *, ci: str | None, reason: str = "kubectl not installed") -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(SUITE.format(reason=reason))
    return pytest_in(tmp_path, "test_suite.py", ci=ci)


def test_an_unexpected_skip_fails_the_run_in_ci_and_is_named(tmp_path):
    result = run_suite(tmp_path, ci="true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "unexpected skips (CI=true)" in result.stdout
    assert "test_skips_itself: kubectl not installed" in result.stdout
    assert "test_needs_a_gpu" not in result.stdout.split("unexpected skips")[1]  # on the allow-list


def test_allowed_skips_pass_in_ci(tmp_path):
    result = run_suite(tmp_path, ci="true", reason="no CUDA device")
    assert result.returncode == pytest.ExitCode.OK, result.stdout


def test_outside_ci_skips_are_reported_but_do_not_fail(tmp_path):
    result = run_suite(tmp_path, ci=None)
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "2 skipped" in result.stdout


def test_the_readme_allow_list_is_the_code_allow_list():
    from tests.support.ci_skips import ALLOWED_SKIP_REASONS

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("| skip reason allowed in CI | why |"):]
    section = section[: section.index("\n\n")]
    assert tuple(re.findall(r"^\| `([^`]+)` \|", section, re.M)) == ALLOWED_SKIP_REASONS


# A module that skips itself while it is collected (as tests/bench/test_bench.py does without its extras):
# none of its tests exists, so none is reported skipped at run time.
SKIPPED_MODULE = '''
import pytest

pytest.importorskip("a_module_that_is_not_installed")


def test_never_collected():
    pass
'''

PASSING_MODULE = '''
def test_runs():
    pass
'''


def test_a_module_skipped_while_collected_fails_the_run_in_ci_and_is_named(tmp_path):
    (tmp_path / "test_skipped.py").write_text(SKIPPED_MODULE)
    (tmp_path / "test_passing.py").write_text(PASSING_MODULE)
    result = pytest_in(tmp_path, "test_skipped.py", "test_passing.py", ci="true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    summary = result.stdout.split("unexpected skips (CI=true)")[1]
    assert "test_skipped.py: could not import 'a_module_that_is_not_installed'" in summary
    outside = pytest_in(tmp_path, "test_skipped.py", "test_passing.py", ci=None)
    assert outside.returncode == pytest.ExitCode.OK and "1 passed, 1 skipped" in outside.stdout, outside.stdout


def test_a_run_that_collects_nothing_fails_in_ci(tmp_path):
    (tmp_path / "test_empty.py").write_text("# no tests here\n")
    (tmp_path / "test_passing.py").write_text(PASSING_MODULE)
    result = pytest_in(tmp_path, "test_empty.py", ci="true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "no tests (CI=true)" in result.stdout
    deselected = pytest_in(tmp_path, "test_passing.py", "-k", "no_such_test", ci="true")  # all deselected: nothing ran
    assert deselected.returncode == pytest.ExitCode.TESTS_FAILED, deselected.stdout
    (tmp_path / "test_skipped.py").write_text(SKIPPED_MODULE)
    only_skipped = pytest_in(tmp_path, "test_skipped.py", ci="true")  # every module skipped while collected
    assert only_skipped.returncode == pytest.ExitCode.TESTS_FAILED, only_skipped.stdout
    assert "no tests (CI=true)" in only_skipped.stdout and "unexpected skips (CI=true)" in only_skipped.stdout
    assert pytest_in(tmp_path, "test_passing.py", ci="true").returncode == pytest.ExitCode.OK


# A property test that writes down the examples Hypothesis gives it.
PROPERTY = '''
import os

from hypothesis import given, settings, strategies as st


def test_profile():
    assert settings.default.derandomize is (os.environ.get("CI") == "true")


@given(st.integers())
def test_examples(n):
    with open(os.environ["EXAMPLES"], "a") as out:
        out.write(f"{n}\\n")
'''


def test_hypothesis_runs_derandomised_in_ci(tmp_path, monkeypatch):
    """Under CI=true tests/conftest.py loads the "ci" profile: derandomize, so two runs try the same examples;
    elsewhere the default profile (random examples) stays."""
    (tmp_path / "test_property.py").write_text(PROPERTY)
    examples = []
    for run in range(2):
        monkeypatch.setenv("EXAMPLES", str(tmp_path / f"examples-{run}.txt"))
        result = pytest_in(tmp_path, "test_property.py", ci="true", plugin="tests.conftest")
        assert result.returncode == pytest.ExitCode.OK, result.stdout
        examples.append((tmp_path / f"examples-{run}.txt").read_text().split())
    assert len(examples[0]) > 10 and examples[0] == examples[1]
    monkeypatch.setenv("EXAMPLES", str(tmp_path / "examples-outside.txt"))
    outside = pytest_in(tmp_path, "test_property.py", ci=None, plugin="tests.conftest")
    assert outside.returncode == pytest.ExitCode.OK, outside.stdout  # test_profile: derandomize is off
