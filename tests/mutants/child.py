"""A mutant in a child process: ``tests/mutants/inject/sitecustomize.py`` (on the child's ``PYTHONPATH``
while a mutant with ``children=True`` runs) calls ``install`` with the mutant's name, before any project
module is imported. The mutant's rewrites are then made to each module's source as it is compiled, whether
it is imported or run with ``python -m`` (runpy asks the same loader for its code), in this process and in
the processes it starts (they inherit the environment) or forks."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

from tests.mutants import reach
from tests.mutants.ops import Rewrite, edit_module_source


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    edits: list[Rewrite] = []
    mutant = ""

    def get_code(self, fullname):
        source = importlib.util.decode_source(self.get_data(self.path))
        source = edit_module_source(source, self.edits, self.mutant, fullname)
        return compile(source, self.path, "exec", dont_inherit=True)  # never cached: the .pyc stays the real one


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, mutant: str, edits: dict[str, list[Rewrite]]):
        self.mutant = mutant
        self.edits = edits

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.edits:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        loader = _RewritingLoader(fullname, spec.origin)
        loader.edits = self.edits[fullname]
        loader.mutant = self.mutant
        spec.loader = loader
        return spec


class _FinderFirst(list):
    """``sys.meta_path`` that keeps the mutant's finder in front: pytest puts its assertion-rewriting hook
    first when it starts (after this ran), and would otherwise compile its plugins and conftests from the
    unedited source."""

    def insert(self, index, finder):
        super().insert(max(index, 1) if index >= 0 else index, finder)


def install(name: str, catalogue: str | None = None) -> None:
    from tests.mutants.catalogue import by_name

    mutant = by_name(name, catalogue)
    edits: dict[str, list[Rewrite]] = {}
    for op in mutant.ops:
        if isinstance(op, Rewrite):
            edits.setdefault(op.module, []).append(op)
    reach.mark_child()
    sys.meta_path = _FinderFirst([_Finder(name, edits), *sys.meta_path])
