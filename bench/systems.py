"""The systems under test, each started as its own process(es) on loopback and stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pids: list[int]) -> float:
    """Sum of the processes' peak resident set sizes (VmHWM), in MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> tuple[float, float]:
    """A server process's CPU time so far, split by thread: (forward pass, request path). Threads named
    "model" (the model thread and the engine pools it started) run the forward pass; the event loop,
    gRPC core's threads and everything else are the request path."""
    ticks = os.sysconf("SC_CLK_TCK")
    forward = other = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            if (task / "comm").read_text().strip() == "model":
                forward += seconds
            else:
                other += seconds
    return forward, other


def process_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of whole processes (the bridge's gunicorn master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def metric(url: str, name: str) -> float:
    """One sample of the server's Prometheus endpoint (0 when absent)."""
    for line in requests.get(url, timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


class ProcessExited(RuntimeError):
    """A process a benchmark waits for has exited: waiting longer cannot help."""


def wait_until(check, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ProcessExited:
            raise
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError("system did not become ready")


@contextlib.contextmanager
def process(args: list[str], env: dict | None = None, log: Path | None = None):
    handle = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=handle, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            handle.close()


@contextlib.contextmanager
def seed_service(model_dir: Path, vocab_file: Path, logs: Path):
    port = free_port()
    env = {"SEED_MODEL": str(model_dir), "SEED_VOCAB": str(vocab_file), "SEED_PORT": str(port)}
    with process([sys.executable, "-m", "bench.seed_app"], env, logs / "seed.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=2).ok)
        yield f"{url}/predict", [proc.pid]


@contextlib.contextmanager
def grpc_server(model_dir: Path, logs: Path, device: str = "auto", dtype: str = "auto", engine: str = "auto",
                **settings):
    """The gRPC server; yields its target, pids, ModelInfo and metrics URL."""
    from clients import SentimentClient

    port, metrics_port = free_port(), free_port()
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    args = [sys.executable, "-m", "server.app", "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
            "--dtype", dtype, "--engine", engine, f"--metrics-port={metrics_port}", *flags]
    env = {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}  # the server uses a GPU whenever torch sees one
    with process(args, env, log=logs / f"server-{port}.log") as proc:
        target = f"127.0.0.1:{port}"
        with SentimentClient(target) as client:
            wait_until(lambda: _serving(client, proc), timeout=600)
            info = client.model_info()
        yield target, [proc.pid], info, f"http://127.0.0.1:{metrics_port}/metrics"


def _serving(client, proc: subprocess.Popen) -> bool:
    """Whether the server reports SERVING yet; an exited server fails the wait at once, with its status."""
    if proc.poll() is not None:
        raise ProcessExited(f"the server exited with status {proc.returncode} before it was SERVING")
    from clients import SentimentError

    try:
        return client.health(timeout=2.0) == "SERVING"
    except SentimentError:
        return False


@contextlib.contextmanager
def transport_floor(logs: Path):
    """bench.floor_server: what a bare grpc.aio server costs per call."""
    import grpc

    port = free_port()
    with process([sys.executable, "-m", "bench.floor_server", "--port", str(port)], log=logs / "floor.log") as proc:
        target = f"127.0.0.1:{port}"
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield target, [proc.pid]


@contextlib.contextmanager
def bridge(backend: str, logs: Path, workers: int = 1):
    """The bridge with its default threads and concurrency limit; one worker (the machine has two cores)."""
    port = free_port()
    args = [sys.executable, "-m", "rest_bridge.main", "--backend", backend, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    with process(args, log=logs / f"bridge-{port}.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{url}/readyz", timeout=2).ok)
        yield f"{url}/predict", [proc.pid, *children(proc.pid)]
