"""The CI skip guard (tests/ci_skips.py), run on a small suite of its own in a subprocess."""

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


def run_suite(tmp_path, *, ci: str | None, reason: str = "kubectl not installed") -> subprocess.CompletedProcess:
    (tmp_path / "test_suite.py").write_text(SUITE.format(reason=reason))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.support.ci_skips", "-p", "no:cacheprovider", "-q",
                           str(tmp_path / "test_suite.py")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


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
