"""``sentiment-serve-all``: the gRPC server and the REST bridge together, for one machine.

Starts both processes (the built-in model ships with the repository: nothing is built first), forwards
SIGTERM/SIGINT to them and exits when either one does (with a non-zero status when a child died). With
``SENTIMENT_PORT=0`` it reads the port the server picked from its port file before starting the bridge.
Settings come from the same environment variables
(``SENTIMENT_*`` for the server, ``SENTIMENT_BRIDGE_*`` for the bridge)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sentiment.common.logging_setup import configure_logging

log = logging.getLogger("sentiment.serve_all")


def main() -> int:
    configure_logging(os.environ.get("SENTIMENT_LOG_LEVEL", "INFO"))
    env = dict(os.environ)
    port = env.get("SENTIMENT_PORT", "50051")
    read_port = port == "0" and "SENTIMENT_BRIDGE_BACKEND" not in env  # the bridge needs the port picked
    if read_port:
        env.setdefault("SENTIMENT_PORT_FILE", str(Path(tempfile.mkdtemp(prefix="sentiment-serve-all-")) / "ports.json"))
    processes = [subprocess.Popen([sys.executable, "-m", "server.app"], env=env)]

    signalled: set[int] = set()

    def forward(signum, _frame):
        """Pass a signal on, once per child: a second SIGTERM could reach a child after its event loop
        has closed (signal handlers back to the default) while it finishes exiting, and kill it."""
        for process in processes:
            if process.poll() is None and process.pid not in signalled:
                signalled.add(process.pid)
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if read_port:
        port_file = Path(env["SENTIMENT_PORT_FILE"])
        while not port_file.exists():
            if processes[0].poll() is not None:
                return _exit_status(processes[0].returncode)
            time.sleep(0.05)
        port = str(json.loads(port_file.read_text())["grpc"])
    env.setdefault("SENTIMENT_BRIDGE_BACKEND", f"localhost:{port}")
    processes.append(subprocess.Popen([sys.executable, "-m", "rest_bridge.main"], env=env))
    log.info("started the server (pid %d) and the bridge (pid %d)", processes[0].pid, processes[1].pid)
    while all(p.poll() is None for p in processes):
        time.sleep(0.2)
    for name, process in zip(("server", "bridge"), processes):
        if process.poll() is not None:
            log.info("the %s exited (%d): stopping the other", name, process.returncode)
    forward(signal.SIGTERM, None)
    return max(_exit_status(p.wait()) for p in processes)


def _exit_status(returncode: int) -> int:
    """A child killed by signal N counts as 128 + N, as in a shell: a child that died is never a clean exit."""
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main())
