"""The mutation harness itself (``python -m tests.mutants``), on a toy project of its own in a subprocess:
only an assertion failure kills a mutant; an error, a failed setup, a mutant off the code path, stale
code, a hang or a test that fails anyway is reported as such, never as killed. And the real catalogue
still applies to the code and the tests as they are (no test run)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mutants.plugin import assertion_failure

ROOT = Path(__file__).resolve().parents[2]

TOY_CODE = '''
import time


def add(a, b):
    return a + b


def check(n):
    if n < 0:
        raise ValueError("negative")
    return n


def table():
    return {"key": 1}


def make():
    return "made"


def unused():
    return 1


def slow():
    return 1


def stuck():
    time.sleep(3600)


def main():
    print(add(2, 2))


if __name__ == "__main__":
    main()
'''

TOY_TESTS = '''
import subprocess
import sys

import pytest

import toy_code


def test_assert():
    assert toy_code.add(1, 2) == 3


def test_blind():
    toy_code.add(1, 2)  # runs the code, checks nothing


def test_raises():
    with pytest.raises(ValueError):
        toy_code.check(-1)


def test_error():
    assert toy_code.table()["key"] == 1  # a KeyError under the mutant: not an assertion


@pytest.fixture
def made():
    return toy_code.make()


def test_setup(made):
    assert made == "made"


def test_other():
    assert toy_code.add(0, 0) == 0


def test_slow():
    assert toy_code.slow() == 1


def test_stuck_anyway():
    toy_code.stuck()


def test_fails_anyway():
    assert toy_code.add(1, 1) == 3


def test_child():
    out = subprocess.run([sys.executable, "-m", "toy_code"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "4"
'''

TOY_CATALOGUE = '''
from tests.mutants.ops import Mutant, rewrite

T = "test_toy.py"

MUTANTS = [
    Mutant("add-subtracts", "", "add subtracts", [f"{T}::test_assert", f"{T}::test_blind"],
           [rewrite("toy_code:add", "return a + b", "return REACHED and a - b")]),
    Mutant("no-raise", "", "check lets negatives through", [f"{T}::test_raises"],
           [rewrite("toy_code:check", 'raise ValueError("negative")', "REACHED")]),
    Mutant("key-lost", "", "the table loses its key", [f"{T}::test_error"],
           [rewrite("toy_code:table", 'return {"key": 1}', "return REACHED and {}")]),
    Mutant("hangs", "", "slow never returns", [f"{T}::test_slow"],
           [rewrite("toy_code:slow", "return 1", "return REACHED and time.sleep(3600)")], timeout=5),
    Mutant("make-breaks", "", "make raises", [f"{T}::test_setup"],
           [rewrite("toy_code:make", 'return "made"', "raise RuntimeError(REACHED)")]),
    Mutant("unused-changed", "", "a function no test runs", [f"{T}::test_other"],
           [rewrite("toy_code:unused", "return 1", "return REACHED and 2")]),
    Mutant("stale", "", "an edit whose code is gone", [f"{T}::test_assert"],
           [rewrite("toy_code:add", "return a * b", "return REACHED and a")]),
    Mutant("baseline", "", "a test that fails without the mutant", [f"{T}::test_fails_anyway"],
           [rewrite("toy_code:add", "return a + b", "return REACHED and a - b")]),
    Mutant("child", "", "the module run with python -m prints another sum", [f"{T}::test_child"],
           [rewrite("toy_code:main", "print(add(2, 2))", "print(REACHED and add(2, 3))")], children=True),
    Mutant("stuck", "", "a test that hangs without the mutant", [f"{T}::test_stuck_anyway"],
           [rewrite("toy_code:add", "return a + b", "return REACHED and a - b")], timeout=5),
    Mutant("missing", "", "a test that does not exist", [f"{T}::test_renamed"],
           [rewrite("toy_code:add", "return a + b", "return REACHED and a - b")]),
]
'''


def run_harness(tmp_path, *names: str) -> tuple[subprocess.CompletedProcess, dict]:
    (tmp_path / "toy_code.py").write_text(TOY_CODE)
    (tmp_path / "test_toy.py").write_text(TOY_TESTS)
    (tmp_path / "toy_catalogue.py").write_text(TOY_CATALOGUE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MUTANTS_ACTIVE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, "-m", "tests.mutants", "--catalogue", "toy_catalogue", "--json", str(out),
                             *names], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {(r["mutant"], r["test"].split("::")[1]): r["outcome"] for r in json.loads(out.read_text())}
    return result, outcomes


def test_only_an_assertion_failure_kills_a_mutant(tmp_path):
    result, outcomes = run_harness(tmp_path)
    assert outcomes == {
        ("add-subtracts", "test_assert"): "KILLED",          # assert
        ("add-subtracts", "test_blind"): "SURVIVED",         # the code ran, nothing checked it
        ("no-raise", "test_raises"): "KILLED",               # pytest.raises: DID NOT RAISE
        ("key-lost", "test_error"): "ERROR",                 # KeyError, not an assertion
        ("hangs", "test_slow"): "TIMEOUT",                   # the session was stopped and a new one went on
        ("make-breaks", "test_setup"): "ERROR",              # the fixture failed
        ("unused-changed", "test_other"): "NOT REACHED",     # the test passed, but the edit is off its path
        ("stale", "test_assert"): "STALE",                   # its text is not in the code
        ("baseline", "test_fails_anyway"): "BASELINE FAILED",
        ("child", "test_child"): "KILLED",                   # edited in the process the test starts
        ("stuck", "test_stuck_anyway"): "TIMEOUT",           # in its baseline: the session went on without it
        ("missing", "test_renamed"): "ERROR",                # not collected
    }, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 1
    assert re.search(r"^\| add-subtracts +\| test_toy.py::test_assert +\| KILLED +\|", result.stdout, re.M)  # the table


def test_the_run_passes_when_every_mutant_is_killed(tmp_path):
    result, outcomes = run_harness(tmp_path, "no-raise", "child")
    assert set(outcomes.values()) == {"KILLED"} and result.returncode == 0, result.stdout[-4000:]


def test_assertion_failures_are_assertions_and_pytest_failures_only():
    from hypothesis.errors import FlakyFailure

    assert assertion_failure(AssertionError("x")) and assertion_failure(pytest.fail.Exception("DID NOT RAISE"))
    assert assertion_failure(BaseExceptionGroup("several bugs", [AssertionError(), pytest.fail.Exception("y")]))
    assert not assertion_failure(ExceptionGroup("several bugs", [AssertionError(), KeyError("k")]))
    assert not assertion_failure(FlakyFailure("not reproduced", [AssertionError()]))
    for error in (TimeoutError(), KeyError("k"), ConnectionError(), RuntimeError()):
        assert not assertion_failure(error)


def test_the_catalogue_applies_to_the_code_and_tests_as_they_are():
    """Every mutant's edit is still in its function, its tests are collected, and every promise of
    docs/reliability.md has a mutant or is a known gap: `python -m tests.mutants --check`."""
    env = {k: v for k, v in os.environ.items() if k != "MUTANTS_ACTIVE"}
    result = subprocess.run([sys.executable, "-m", "tests.mutants", "--check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
