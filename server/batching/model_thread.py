"""The one thread on which a server process runs the model."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from concurrent.futures import ThreadPoolExecutor

MODEL_THREAD_NAME = "model"


def _init_model_thread(nice: int) -> None:
    """Give the model thread its name at the OS level too (``top -H``, /proc/<pid>/task/*/comm), and its
    lower priority. The engines' own pools (OpenMP, ONNX Runtime) are started from this thread and inherit
    both, so a process's CPU time splits into the forward pass ("model") and the request path (everything
    else), and under CPU contention the event loop, which takes, answers and refuses calls, runs before
    the forward pass (on Linux ``setpriority`` on the calling thread applies to that thread alone)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(15, MODEL_THREAD_NAME.encode(), 0, 0, 0)  # PR_SET_NAME
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + nice)


def model_thread(nice: int = 0) -> ThreadPoolExecutor:
    """torch's OpenMP thread pool belongs to the first thread that runs an op, and ops from any other thread
    run markedly slower (measured here: a one-text MiniLM forward pass 11 ms on the pool's own thread, 14-20
    ms from another). So the server loads, times, warms up and runs the model all on this thread. ``nice``:
    how much lower than the rest of the process it and its engines' pools run (``BatchPolicy.model_nice``)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=MODEL_THREAD_NAME,
                              initializer=functools.partial(_init_model_thread, nice))
