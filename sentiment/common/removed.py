"""Refusing a removed setting by name: a flag or an environment variable the service no longer reads
stops the process with what replaced it, instead of being ignored (which would leave a user believing
a setting they gave took effect)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping


class RemovedSetting(SystemExit):
    """Exits with status 2, a usage error (as argparse's), once the message is on stderr."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def refuse_removed(removed: Mapping[str, str], argv: Iterable[str], environ: Mapping[str, str], *,
                   env_prefix: str, other_prefixes: tuple[str, ...] = ()) -> None:
    """Raise ``RemovedSetting`` (exit status 2, as argparse) naming every removed setting given, by flag
    (``--max-padding-ratio``, ``--max-padding-ratio=2``, ``--no-warmup``) or by variable (``PREFIX_NAME``;
    variables of other programs sharing the prefix, such as ``SENTIMENT_BRIDGE_*``, are not this one's)."""
    given = []
    for arg in argv:
        if not arg.startswith("--"):
            continue
        flag = arg[2:].split("=", 1)[0]
        name = flag.replace("-", "_")
        for candidate in (name, name.removeprefix("no_")):
            if candidate in removed:
                given.append((f"--{flag}", removed[candidate]))
                break
    for variable in environ:
        if variable.startswith(env_prefix) and not variable.startswith(other_prefixes):
            name = variable[len(env_prefix):].lower()
            if name in removed:
                given.append((variable, removed[name]))
    if given:
        message = "\n".join(f"{setting} was removed: {replacement}" for setting, replacement in given)
        print(message, file=sys.stderr)
        raise RemovedSetting(message)
