"""``--port-file``: the ports a process bound, written as one JSON object once it listens.

With ``--port 0`` the kernel picks a free port; a supervisor or a test reads it back from this file
instead of guessing a free port first (a race: another process may take it in between). The file is
written whole (a temporary file renamed into place), so a reader never sees half of it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_port_file(path: str | os.PathLike, ports: dict[str, int | None]) -> None:
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(ports) + "\n")
    os.replace(partial, target)
