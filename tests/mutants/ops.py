"""What a mutant does, as data (stdlib only: a child process imports this before any project code).

- ``rewrite("module:Qual.name", old, new)``: edit one function's source (``old`` must occur exactly once in
  it, or the mutant is STALE), with ``REACHED`` in ``new`` marking the mutated code: it becomes a call that
  records the mutant reached (``tests.mutants.reach``). In the test process the function is recompiled from
  the edited source and replaces the original wherever a project module holds it; in a child process
  (``children=True``) the module's source is edited before it is compiled, so ``python -m`` modules and
  grandchildren get the bug too.
  ``rewrite("module:", old, new)`` edits the module's own code (what runs on import), in children only.
- ``setitem("module:NAME", key, value)``, ``setattr_("module:Qual.name", value)``, ``delattr_("module:Class.name")``
  (the base class's attribute then shows through): change a table, a constant or a class in the test
  process, with ``probe("module:Qual.name")``, a function that reads the change and must be called during
  the test (wrapped to count its calls), or the mutant's ``unprobed="why"`` where the test reads it itself.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import types
from dataclasses import dataclass
from typing import Any

from tests.mutants import reach

MARKER = "REACHED"


class StaleMutant(Exception):
    """The code a mutant edits has changed: its ``old`` text is not in the function exactly once."""


@dataclass(frozen=True)
class Rewrite:
    target: str  # "module:Qual.name"
    old: str
    new: str

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def qualname(self) -> str:
        return self.target.split(":", 1)[1]


@dataclass(frozen=True)
class SetItem:
    target: str  # "module:NAME" of a dict
    key: Any
    value: Any


@dataclass(frozen=True)
class SetAttr:
    target: str  # "module:Qual.name"
    value: Any


@dataclass(frozen=True)
class DelAttr:
    target: str  # "module:Class.name": the class then inherits the name from its base


@dataclass(frozen=True)
class Probe:
    target: str  # "module:Qual.name": a function that must run during the test


def rewrite(target: str, old: str, new: str) -> Rewrite:
    return Rewrite(target, old, new)


def setitem(target: str, key, value) -> SetItem:
    return SetItem(target, key, value)


def setattr_(target: str, value) -> SetAttr:
    return SetAttr(target, value)


def delattr_(target: str) -> DelAttr:
    return DelAttr(target)


def probe(target: str) -> Probe:
    return Probe(target)


@dataclass
class Mutant:
    name: str
    promise: str  # the row of docs/reliability.md (its first column), or "" for a test outside it
    what: str  # the bug, in words
    tests: list[str]  # node ids; each must fail with an assertion under the mutant
    ops: list
    fresh: bool = False  # module-scoped fixtures (servers) are rebuilt under the mutant, and after it
    children: bool = False  # the rewrites are made in the processes the test starts, not in its own
    timeout: float = 150.0  # seconds for one run of one test under the mutant
    unprobed: str = ""  # why no probe: the test reads the changed value itself

    def __post_init__(self):
        probed = any(isinstance(op, Probe) or (isinstance(op, Rewrite) and MARKER in op.new) for op in self.ops)
        if any(isinstance(op, Rewrite) and not op.qualname for op in self.ops) and not self.children:
            raise ValueError(f"mutant {self.name}: a rewrite of a module's own code (\"module:\") needs children=True")
        if self.children and not all(isinstance(op, Rewrite) for op in self.ops):
            raise ValueError(f"mutant {self.name}: in child processes only rewrites are made")
        if not probed and not self.unprobed:
            raise ValueError(f"mutant {self.name}: no rewrite marked {MARKER} and no probe shows that its change is on "
                             "the code path")


# -- editing source ----------------------------------------------------------------------------------------

def edit(source: str, old: str, new: str, name: str, where: str) -> str:
    count = source.count(old)
    if count != 1:
        raise StaleMutant(f"{where}: {old!r} occurs {count} times (expected once): the code changed, update the mutant")
    return source.replace(old, new.replace(MARKER, reach.marker(name)))


def _function_node(tree: ast.Module, qualname: str) -> ast.AST:
    node: ast.AST = tree
    for part in qualname.split("."):
        body = getattr(node, "body", [])
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        found = [n for n in body if isinstance(n, kinds) and n.name == part]
        if not found:
            raise StaleMutant(f"{qualname}: no {part!r} in the source")
        node = found[-1]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise StaleMutant(f"{qualname} is not a function")
    return node


def edit_module_source(source: str, edits: list[Rewrite], name: str, module: str) -> str:
    """The module's source with each edit made inside its function (the child-process path)."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    by_function: dict[str, list[Rewrite]] = {}
    for change in edits:
        by_function.setdefault(change.qualname, []).append(change)
    spans = []
    for qualname, changes in by_function.items():
        if not qualname:  # the module's own code (what runs when it is imported)
            spans.append((1, len(lines), "", changes))
            continue
        node = _function_node(tree, qualname)
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        spans.append((first, node.end_lineno, qualname, changes))
    for first, last, qualname, changes in sorted(spans, key=lambda s: s[0], reverse=True):  # bottom-up
        text = "".join(lines[first - 1:last])
        for change in changes:
            text = edit(text, change.old, change.new, name, f"{module}:{qualname}")
        lines[first - 1:last] = [text]
    return "".join(lines)


# -- the test process: resolving names, recompiling one function -------------------------------------------

def resolve(target: str):
    """(owner, attribute name, module) of "module:Qual.name"; owner is the module or a class."""
    module_name, qualname = target.split(":", 1)
    module = importlib.import_module(module_name)
    owner: Any = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1], module


def raw_attribute(owner, name: str):
    return owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)


def plain_function(raw) -> types.FunctionType:
    if isinstance(raw, property):
        raw = raw.fget
    if isinstance(raw, (staticmethod, classmethod)):
        raw = raw.__func__
    return inspect.unwrap(raw)


def recompiled(changes: list[Rewrite], name: str):
    """The function of the changes' target compiled from its edited source, bound to its own module's
    globals (so it sees what tests patch there), with its decorators applied again; returns (owner, attr,
    value)."""
    target = changes[0].target
    owner, attr, module = resolve(target)
    function = plain_function(raw_attribute(owner, attr))
    lines, first = inspect.getsourcelines(function)
    source = textwrap.dedent("".join(lines))
    for change in changes:
        source = edit(source, change.old, change.new, name, target)
    tree = ast.parse(source)
    node = tree.body[0]
    decorators, node.decorator_list = node.decorator_list, []
    ast.increment_lineno(tree, first - 1)
    if function.__code__.co_freevars:
        raise StaleMutant(f"{target} uses names of an enclosing scope ({function.__code__.co_freevars}): "
                          "rewrite a function without them")
    future = getattr(module, "annotations", None)
    flags = future.compiler_flag if getattr(future, "compiler_flag", None) else 0
    code = compile(tree, inspect.getsourcefile(function), "exec", flags=flags, dont_inherit=True)
    scratch = dict(vars(module))
    exec(code, scratch)
    made = scratch[node.name]
    rebuilt = types.FunctionType(made.__code__, vars(module), made.__name__, made.__defaults__, made.__closure__)
    rebuilt.__kwdefaults__ = made.__kwdefaults__
    rebuilt.__qualname__ = function.__qualname__
    rebuilt.__module__ = function.__module__
    rebuilt.__doc__ = function.__doc__
    rebuilt.__dict__.update(function.__dict__)
    value: Any = rebuilt
    for decorator in reversed(decorators):
        expression = ast.Expression(decorator)
        ast.fix_missing_locations(expression)
        scope = dict(vars(owner)) if isinstance(owner, type) else None  # a class body's names, as at definition
        value = eval(compile(expression, "<decorator>", "eval"), vars(module), scope)(value)
    return owner, attr, value


def counting(function, name: str):
    """``function`` wrapped to record each call as a hit of mutant ``name`` (a probe)."""
    import functools

    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def probe(*args, **kwargs):
            reach.hit(name)
            return await function(*args, **kwargs)
    else:
        @functools.wraps(function)
        def probe(*args, **kwargs):
            reach.hit(name)
            return function(*args, **kwargs)
    return probe


PROJECT_PACKAGES = ("server", "rest_bridge", "clients", "launcher", "sentiment", "training", "bench", "tests")


def holders(original) -> list[tuple[object, str]]:
    """Every project module attribute that is ``original`` (``from x import f`` copies the name)."""
    import sys

    found = []
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in PROJECT_PACKAGES or name.startswith("tests.mutants"):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                found.append((module, attr))
    return found


def rewrites_by_target(mutant: Mutant) -> dict[str, list[Rewrite]]:
    """The rewrites of functions, by function (a module-level rewrite, "module:", is made in children only)."""
    grouped: dict[str, list[Rewrite]] = {}
    for op in mutant.ops:
        if isinstance(op, Rewrite) and op.qualname:
            grouped.setdefault(op.target, []).append(op)
    return grouped


def check_module_rewrites(mutant: Mutant, *, every: bool = False) -> None:
    """Edit (without running) the source of each module a rewrite of the module's own code changes; with
    ``every``, of each module any rewrite changes (a child-process mutant: its modules need not import here)."""
    import importlib.util

    by_module: dict[str, list[Rewrite]] = {}
    for op in mutant.ops:
        if isinstance(op, Rewrite) and (every or not op.qualname):
            by_module.setdefault(op.module, []).append(op)
    for module, changes in by_module.items():
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise StaleMutant(f"no module {module}")
        with open(spec.origin, encoding="utf-8") as source:
            compile(edit_module_source(source.read(), changes, mutant.name, module), spec.origin, "exec")


def apply_in_process(mutant: Mutant, monkeypatch) -> None:
    """Make the mutant's changes in this process, each undone by ``monkeypatch.undo()``."""
    check_module_rewrites(mutant)  # made in child processes only, but stale is stale
    for changes in rewrites_by_target(mutant).values():
        owner, attr, value = recompiled(changes, mutant.name)
        _replace(monkeypatch, owner, attr, value)
    for op in mutant.ops:
        if isinstance(op, Rewrite):
            continue
        elif isinstance(op, Probe):
            owner, attr, _ = resolve(op.target)
            raw = raw_attribute(owner, attr)
            if isinstance(raw, (staticmethod, classmethod, property)):
                raise ValueError(f"{op.target}: probe a plain function or method")
            _replace(monkeypatch, owner, attr, counting(raw, mutant.name))
        elif isinstance(op, SetItem):
            owner, attr, _ = resolve(op.target)
            monkeypatch.setitem(getattr(owner, attr), op.key, op.value)
        elif isinstance(op, SetAttr):
            owner, attr, _ = resolve(op.target)
            monkeypatch.setattr(owner, attr, op.value)
        elif isinstance(op, DelAttr):
            owner, attr, _ = resolve(op.target)
            monkeypatch.delattr(owner, attr)
        else:
            raise TypeError(op)


def _replace(monkeypatch, owner, attr: str, value) -> None:
    original = raw_attribute(owner, attr)
    monkeypatch.setattr(owner, attr, value)
    if not isinstance(owner, type):  # a module-level function: every module that imported it by name
        for module, name in holders(original):
            monkeypatch.setattr(module, name, value)


def check(mutant: Mutant) -> None:
    """Raise ``StaleMutant`` when an edit no longer applies (without changing anything)."""
    if mutant.children:
        check_module_rewrites(mutant, every=True)
        return
    for changes in rewrites_by_target(mutant).values():
        recompiled(changes, mutant.name)
    check_module_rewrites(mutant)
    for op in mutant.ops:
        if isinstance(op, (Probe, SetAttr, DelAttr)):
            owner, attr, _ = resolve(op.target)
            raw_attribute(owner, attr)
        elif isinstance(op, SetItem):
            owner, attr, _ = resolve(op.target)
            table = getattr(owner, attr)
            if op.key not in table:
                raise StaleMutant(f"{op.target} has no key {op.key!r}")
