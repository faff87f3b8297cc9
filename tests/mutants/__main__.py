"""``python -m tests.mutants [NAME ...]`` (``make mutants``): run the mutants (all, or those named) and print
the table: mutant, test, outcome. Exit status 0 only when every mutant is KILLED by every test paired with
it; the rules are in ``tests.mutants.plugin``.

``--list``: the mutants and their tests. ``--check``: only check that every mutant still applies (its code is
there, its tests are collected) and that every row of docs/reliability.md has one, without running any test.

The tests run in one pytest session in a child process; a run that outlives its mutant's time limit stops
that session (its test is reported TIMEOUT) and a new one goes on with the rest."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_RESTARTS = 5


def node_files(mutants) -> list[str]:
    return sorted({test.split("::", 1)[0] for mutant in mutants for test in mutant.tests})


def run_session(spec: dict, files: list[str], cwd: Path) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    env = {**os.environ, "MUTANTS_RUN": handle.name, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-m", "pytest", "-p", "tests.mutants.plugin", "-p", "no:cacheprovider", "-q",
               "--no-header", "-rN", "--disable-warnings", "--continue-on-collection-errors", *files]
    try:
        return subprocess.run(command, cwd=cwd, env=env).returncode
    finally:
        os.unlink(handle.name)


def read_results(path: Path) -> tuple[list[dict], dict | None]:
    """Finished results, and the run that started without finishing (the session died in it), if any: a
    mutant's run, or a test's baseline (``mutant`` None)."""
    finished, started = [], None
    if path.exists():
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event["event"] == "start":
                started = event
                continue
            if event["event"] == "result":
                finished.append(event)
            if started and (started["mutant"], started["test"]) == (event["mutant"], event["test"]):
                started = None
    return finished, started


def run(mutants, catalogue: str | None, cwd: Path) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        return _run(mutants, catalogue, cwd, Path(scratch) / "results.jsonl")


def _run(mutants, catalogue: str | None, cwd: Path, results_file: Path) -> list[dict]:
    expected = {(m.name, t) for m in mutants for t in m.tests}
    limits = {m.name: m.timeout for m in mutants}
    for _ in range(MAX_RESTARTS + 1):
        done, _ = read_results(results_file)
        finished_pairs = {(d["mutant"], d["test"]) for d in done}
        left = [m for m in mutants if any((m.name, t) not in finished_pairs for t in m.tests)]
        if not left:
            break
        spec = {"mutants": [m.name for m in left], "results": str(results_file), "done": done, "catalogue": catalogue}
        run_session(spec, node_files(left), cwd)
        finished, dead = read_results(results_file)
        if dead is not None:  # the session was stopped by the watchdog (or crashed) during this run
            if dead["mutant"] is None:  # in the test's baseline: none of its mutants can be judged
                victims = [m.name for m in left if dead["test"] in m.tests]
                limit = max(limits[name] for name in victims)
                detail = f"the test without any mutant outlived {limit:.0f}s: the session was stopped"
            else:
                victims, limit = [dead["mutant"]], limits[dead["mutant"]]
                detail = f"no result within {limit:.0f}s: the session was stopped"
            done_now = {(r["mutant"], r["test"]) for r in finished}
            with results_file.open("a") as out:
                for name in victims:
                    if (name, dead["test"]) not in done_now:
                        out.write(json.dumps({"event": "result", "mutant": name, "test": dead["test"],
                                              "outcome": "TIMEOUT", "seconds": limit, "detail": detail}) + "\n")
        elif not {(r["mutant"], r["test"]) for r in finished} >= expected:
            break  # the session ended without running them (it failed to start): reported below
    finished, _ = read_results(results_file)
    by_pair = {(r["mutant"], r["test"]): r for r in finished}
    return [by_pair.get((m.name, t), {"mutant": m.name, "test": t, "outcome": "ERROR", "seconds": 0.0,
                                      "detail": "never run: the test session failed (see its output above)"})
            for m in mutants for t in m.tests]


def table(results: list[dict]) -> str:
    rows = [("mutant", "test", "outcome", "detail", "s")]
    rows += [(r["mutant"], r["test"], r["outcome"], r.get("detail", ""), f"{r.get('seconds', 0):.1f}") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("| " + " | ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|---|")
    return "\n".join(lines)


def check(mutants, catalogue: str | None, cwd: Path) -> list[str]:
    """Problems that need no test run: stale edits, tests not collected, promises without a mutant."""
    from tests.mutants import ops
    from tests.mutants.catalogue import promise_problems

    problems = []
    for mutant in mutants:
        try:
            ops.check(mutant)
        except (ops.StaleMutant, AttributeError, KeyError, ImportError) as error:
            problems.append(f"{mutant.name}: STALE: {error}")
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                *node_files(mutants)], cwd=cwd, capture_output=True, text=True,
                               )
    ids = set(collected.stdout.split())
    for mutant in mutants:
        for test in mutant.tests:
            if test not in ids:
                problems.append(f"{mutant.name}: {test} is not collected")
    if catalogue is None:
        problems += promise_problems(mutants)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests")
    parser.add_argument("--check", action="store_true", help="check the catalogue without running tests")
    parser.add_argument("--catalogue", help=argparse.SUPPRESS)  # another catalogue module (the harness's own tests)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.mutants.catalogue import load

    mutants = load(args.catalogue)
    cwd = Path.cwd() if args.catalogue else ROOT
    if args.names:
        unknown = set(args.names) - {m.name for m in mutants}
        if unknown:
            parser.error(f"no such mutant: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.name in args.names]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name}: {mutant.what}")
            for test in mutant.tests:
                print(f"    {test}")
        return 0
    if args.check:
        problems = check(mutants, args.catalogue, cwd)
        from tests.mutants.catalogue import GAPS

        gaps = f" but the {len(GAPS)} known gap(s) printed by a run" if GAPS and args.catalogue is None else ""
        print("\n".join(problems) or f"{len(mutants)} mutants apply; every promise has one{gaps}")
        return 1 if problems else 0
    from tests.mutants.catalogue import GAPS, promise_problems

    coverage = promise_problems(load(args.catalogue)) if args.catalogue is None else []
    started = time.monotonic()
    results = run(mutants, args.catalogue, cwd)
    elapsed = time.monotonic() - started
    print()
    print(table(results))
    killed = sum(r["outcome"] == "KILLED" for r in results)
    print(f"\n{killed} of {len(results)} (mutant, test) pairs killed, {len(mutants)} mutants, in {elapsed:.0f}s")
    if args.catalogue is None:
        for promise, why in GAPS.items():
            print(f"known gap, no mutant: {promise!r}: {why}")
    for problem in coverage:
        print(problem)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if killed == len(results) and not coverage else 1


if __name__ == "__main__":
    sys.exit(main())
