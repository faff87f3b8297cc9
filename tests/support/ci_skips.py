"""Under ``CI=true`` a skipped test fails the run unless its reason is on the allow-list below.

A skip is a promise that was not checked; on a developer's machine that is often fine (no GPU, the
built-in model not built yet), but in CI it must be chosen, not silent. The allow-list is short and
documented in the README's test section.

Skips are caught where they happen: while a test runs (``pytest.skip``, ``skipif``) and while a module is
collected (``pytest.importorskip`` or ``pytest.skip(allow_module_level=True)`` at module level, which skips
every test of the module before any of them exists). A run that collects no test at all fails in CI too:
it checked nothing."""

from __future__ import annotations

import os

import pytest

# Reasons (exact) a test may skip in CI: CI machines have no GPU.
ALLOWED_SKIP_REASONS = ("no CUDA device",)

_unexpected: list[tuple[str, str]] = []
_empty: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_reason(report) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}"
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _check(report) -> None:
    if report.skipped and in_ci():
        reason = skip_reason(report)
        if reason not in ALLOWED_SKIP_REASONS:
            _unexpected.append((report.nodeid, reason))


def pytest_runtest_logreport(report) -> None:
    _check(report)


def pytest_collectreport(report) -> None:
    """A module (or class) skipped while it was collected: none of its tests ran, none was reported."""
    _check(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if _unexpected:
        terminalreporter.section("unexpected skips (CI=true)", red=True)
        for nodeid, reason in _unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(f"allowed in CI: {', '.join(ALLOWED_SKIP_REASONS)}")
    if _empty:
        terminalreporter.section("no tests (CI=true)", red=True)
        terminalreporter.line(_empty[0])


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if not in_ci():
        return
    if not session.items and not session.config.getoption("collectonly", False):
        _empty.append("the run collected no test to run: it checked nothing")
    if (_unexpected or _empty) and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
