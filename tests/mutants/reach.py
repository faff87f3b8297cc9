"""Did the mutated code run? A rewritten line calls ``hit(name)`` (its ``REACHED`` marker); a mutant
whose code never ran during its test is reported NOT REACHED, never killed, whatever the test did.

In the test process the hits are counted here; in a child process (``tests.mutants.child``) they are
appended to the file named by ``MUTANTS_REACHED``, once per process, so the harness sees them
even when the child is killed."""

from __future__ import annotations

import os
import threading
from collections import Counter

REACHED_FILE = "MUTANTS_REACHED"

counts: Counter[str] = Counter()
_lock = threading.Lock()
_in_child = False
_written: set[str] = set()


def hit(name: str) -> bool:
    """Record that mutant ``name``'s code ran; always true, so it can sit in an expression (``REACHED and x``)."""
    if _in_child:
        if name not in _written:
            _written.add(name)
            path = os.environ.get(REACHED_FILE)
            if path:
                with open(path, "a") as out:
                    out.write(f"{name} {os.getpid()}\n")
        return True
    with _lock:
        counts[name] += 1
    return True


def marker(name: str) -> str:
    """What ``REACHED`` in a rewrite's new text becomes: a call of ``hit`` that needs no import in the module."""
    return f'__import__("tests.mutants.reach").mutants.reach.hit({name!r})'


def mark_child() -> None:
    global _in_child
    _in_child = True


def child_hits(path: str | os.PathLike) -> Counter[str]:
    found: Counter[str] = Counter()
    try:
        with open(path) as lines:
            for line in lines:
                if line.strip():
                    found[line.split()[0]] += 1
    except FileNotFoundError:
        pass
    return found
