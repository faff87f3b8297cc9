"""The pytest plugin behind ``python -m tests.mutants`` (never loaded by the default test run).

The run's spec (a JSON file named by ``MUTANTS_RUN``) lists the mutants; the session collects the
modules of their tests and runs only those tests. Each test runs first as it is (its baseline: it must
pass, or its mutants cannot be judged), then once under each of its mutants, in the same session, so that
module-scoped fixtures (servers, bridges) are built once and shared, except for a ``fresh`` mutant, whose
module fixtures are rebuilt under it (it changes how a server is built) and again after it.

A mutant is KILLED only when its test fails with an assertion: ``AssertionError`` (``assert``,
``pytest.approx``, a ``pytest.raises`` ``match`` that fails) or pytest's ``Failed`` (``pytest.fail``,
``pytest.raises`` whose exception was not raised). Anything else is not a kill:

- SURVIVED: the test passed under the mutant;
- ERROR: the test failed with another exception (a timeout of its own, a connection error, a
  ``KeyError``...), or its setup or teardown failed: it did not say what broke;
- NOT REACHED: the mutated code never ran during the test (the mutant is not on the code path);
- STALE: the code the mutant edits changed (its text is no longer there exactly once);
- BASELINE FAILED: the test fails without the mutant;
- TIMEOUT (set by the runner): the run outlived the mutant's time limit and the session was stopped.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.mutants import ops, reach

RUN_SPEC = "MUTANTS_RUN"
INJECT = Path(__file__).resolve().parent / "inject"
ROOT = Path(__file__).resolve().parents[2]

KILLED, SURVIVED, ERROR, NOT_REACHED, STALE, BASELINE_FAILED = (
    "KILLED", "SURVIVED", "ERROR", "NOT REACHED", "STALE", "BASELINE FAILED")


def _is_assertion(error: BaseException) -> bool:
    return isinstance(error, (AssertionError, pytest.fail.Exception))


def assertion_failure(error: BaseException) -> bool:
    """Whether a test's exception is an assertion failure: for a group (Hypothesis reports several bugs as
    one), every exception in it; a flaky Hypothesis failure (not reproduced on replay) is not."""
    try:
        from hypothesis.errors import Flaky
    except ImportError:  # pragma: no cover
        Flaky = ()  # noqa: N806
    if Flaky and isinstance(error, Flaky):
        return False
    if isinstance(error, BaseExceptionGroup):
        return all(assertion_failure(e) for e in error.exceptions)
    return _is_assertion(error)


def classify(reports: dict, excinfo: dict) -> tuple[str, str]:
    """(outcome, detail) of one run from its reports and exceptions by phase (setup, call, teardown)."""
    setup = reports.get("setup")
    if setup is None or setup.failed:
        error = excinfo.get("setup")
        return ERROR, f"setup: {_name(error)}"
    if setup.skipped:
        return SURVIVED, "skipped"
    call = reports.get("call")
    if call is not None and call.failed:
        error = excinfo.get("call")
        if error is not None and assertion_failure(error.value):
            return KILLED, _name(error)
        return ERROR, f"not an assertion: {_name(error)}"
    if call is not None and call.skipped:
        return SURVIVED, "skipped"
    teardown = reports.get("teardown")
    if teardown is not None and teardown.failed:
        return ERROR, f"teardown: {_name(excinfo.get('teardown'))}"
    return SURVIVED, "the test passed"


def _name(excinfo) -> str:
    if excinfo is None:
        return "?"
    error = excinfo.value
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:100]}" if text else type(error).__name__


class MutantsPlugin:
    def __init__(self, config, spec: dict):
        from tests.mutants.catalogue import load

        self.config = config
        self.spec = spec
        self.mutants = [m for m in load(spec.get("catalogue")) if m.name in set(spec["mutants"])]
        self.by_test: dict[str, list] = {}
        for mutant in self.mutants:
            for test in mutant.tests:
                self.by_test.setdefault(test, []).append(mutant)
        self.done = {(r["mutant"], r["test"]) for r in spec.get("done", [])}
        self.results = Path(spec["results"])
        self.reached_dir = Path(tempfile.mkdtemp(prefix="mutants-reached-"))

    # -- output ----------------------------------------------------------------------------------------

    def record(self, **event) -> None:
        with self.results.open("a") as out:
            out.write(json.dumps(event) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
        else:  # pragma: no cover
            print(line, flush=True)

    # -- hooks -------------------------------------------------------------------------------------------

    def pytest_unconfigure(self, config):
        shutil.rmtree(self.reached_dir, ignore_errors=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        try:
            from hypothesis import Phase, settings

            # the same examples every run, no database (failures found under a mutant are not kept), no
            # shrinking (a failing example is enough), one exception per failure
            settings.register_profile("mutants", derandomize=True, database=None, report_multiple_bugs=False,
                                      phases=[Phase.explicit, Phase.generate], print_blob=False)
            settings.load_profile("mutants")
        except ImportError:  # pragma: no cover
            pass

    def pytest_collection_modifyitems(self, session, config, items):
        wanted = [item for item in items if item.nodeid in self.by_test]
        found = {item.nodeid for item in wanted}
        for test, mutants in self.by_test.items():
            if test not in found:
                for mutant in mutants:
                    if (mutant.name, test) not in self.done:
                        self.record(event="result", mutant=mutant.name, test=test, outcome=ERROR,
                                    detail="the test was not collected (renamed or moved?)", seconds=0.0)
        deselected = [item for item in items if item.nodeid not in found]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in wanted
                    if any((m.name, item.nodeid) not in self.done for m in self.by_test[item.nodeid])]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        item._mutant_excinfo[call.when] = call.excinfo
        item._mutant_reports[call.when] = outcome.get_result()

    def pytest_runtest_protocol(self, item, nextitem):
        mutants = [m for m in self.by_test[item.nodeid] if (m.name, item.nodeid) not in self.done]
        started = time.monotonic()
        self.record(event="start", mutant=None, test=item.nodeid)
        outcome, detail = self.run_once(item, None, timeout=max(m.timeout for m in mutants))
        self.record(event="baseline", mutant=None, test=item.nodeid, outcome=outcome, detail=detail)
        self.say(f"baseline {item.nodeid}: {'passed' if outcome == SURVIVED else outcome + ' ' + detail}"
                 f" ({time.monotonic() - started:.1f}s)")
        baseline_ok = outcome == SURVIVED and detail == "the test passed"
        for mutant in mutants:
            started = time.monotonic()
            self.record(event="start", mutant=mutant.name, test=item.nodeid)
            if not baseline_ok:
                result = (BASELINE_FAILED, f"{outcome}: {detail}")
            else:
                result = self.run_once(item, mutant, timeout=mutant.timeout)
            seconds = round(time.monotonic() - started, 1)
            self.record(event="result", mutant=mutant.name, test=item.nodeid, outcome=result[0], detail=result[1],
                        seconds=seconds)
            self.say(f"{result[0]:<15} {mutant.name} / {item.nodeid}: {result[1]} ({seconds}s)")
        self.teardown(item.session, nextitem)
        return True

    def teardown(self, session, down_to) -> None:
        """Tear fixtures down to what ``down_to`` (an item, the session, or None: everything) needs; a failing
        finalizer is reported, and the stack is left as the next setup expects."""
        try:
            session._setupstate.teardown_exact(down_to)
        except BaseException as error:  # noqa: BLE001 - one fixture's teardown must not end the session
            self.say(f"fixture teardown failed: {type(error).__name__}: {error}")

    # -- one run of one test -----------------------------------------------------------------------------

    def run_once(self, item, mutant, *, timeout: float) -> tuple[str, str]:
        """One run of ``item``'s test, under ``mutant`` (None: the baseline); (outcome, detail)."""
        from _pytest.runner import runtestprotocol

        session = item.session
        monkeypatch = pytest.MonkeyPatch()
        reached_file = self.reached_dir / f"{mutant.name if mutant else 'baseline'}-{abs(hash(item.nodeid))}"
        faulthandler.dump_traceback_later(timeout, exit=True)
        try:
            if mutant is not None:
                if mutant.fresh:  # fixtures above the function (servers) are made again, under the mutant
                    self.teardown(session, session)
                reach.counts.pop(mutant.name, None)
                try:
                    if mutant.children:  # made in the processes the test starts, not in this one
                        ops.check(mutant)
                        reached_file.unlink(missing_ok=True)
                        monkeypatch.setenv("MUTANTS_ACTIVE", mutant.name)
                        monkeypatch.setenv("MUTANTS_CATALOGUE", self.spec.get("catalogue") or "")
                        monkeypatch.setenv(reach.REACHED_FILE, str(reached_file))
                        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
                            [str(INJECT), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
                    else:
                        ops.apply_in_process(mutant, monkeypatch)
                except ops.StaleMutant as stale:
                    return STALE, str(stale)
            item._mutant_excinfo, item._mutant_reports = {}, {}
            item._initrequest()
            # nextitem: the test's parent, so that only the test's own fixtures are torn down after it
            runtestprotocol(item, log=False, nextitem=item.parent)
            if mutant is not None and mutant.fresh:
                self.teardown(session, session)
        finally:
            faulthandler.cancel_dump_traceback_later()
            monkeypatch.undo()
        outcome, detail = classify(item._mutant_reports, item._mutant_excinfo)
        if mutant is not None and not mutant.unprobed:
            hits = reach.child_hits(reached_file) if mutant.children else reach.counts
            if hits.get(mutant.name, 0) == 0:
                return NOT_REACHED, f"the mutated code never ran (test: {outcome}, {detail})"
        return outcome, detail


def pytest_configure(config):
    path = os.environ.get(RUN_SPEC)
    if not path:
        raise pytest.UsageError(f"tests.mutants.plugin runs under `python -m tests.mutants` ({RUN_SPEC} is not set)")
    spec = json.loads(Path(path).read_text())
    config.pluginmanager.register(MutantsPlugin(config, spec), "mutants-harness")
