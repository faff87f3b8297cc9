"""``sentiment-serve-all``: the gRPC server and the REST bridge together, for one machine.

Builds the built-in model first when it is missing (``python -m training.builtin``, a step of its
own: the server never imports the training code), starts both processes, forwards SIGTERM/SIGINT to
them and exits when either one does. Settings come from the same environment variables
(``SENTIMENT_*`` for the server, ``SENTIMENT_BRIDGE_*`` for the bridge)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from server.builtin_model import is_built


def main() -> int:
    if os.environ.get("SENTIMENT_MODEL", "builtin") == "builtin" and not is_built():
        built = subprocess.run([sys.executable, "-m", "training.builtin"])
        if built.returncode != 0:
            return built.returncode
    port = os.environ.get("SENTIMENT_PORT", "50051")
    env = {**os.environ, "SENTIMENT_BRIDGE_BACKEND": os.environ.get("SENTIMENT_BRIDGE_BACKEND", f"localhost:{port}")}
    processes = [
        subprocess.Popen([sys.executable, "-m", "server.app"], env=env),
        subprocess.Popen([sys.executable, "-m", "rest_bridge.main"], env=env),
    ]

    def forward(signum, _frame):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(p.poll() is None for p in processes):
        time.sleep(0.2)
    forward(signal.SIGTERM, None)
    return max(p.wait() for p in processes)


if __name__ == "__main__":
    sys.exit(main())
