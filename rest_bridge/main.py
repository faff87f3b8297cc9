"""``sentiment-bridge``: the Flask app under gunicorn (threaded workers), never the debug server."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from gunicorn.app.base import BaseApplication

from rest_bridge.settings import BridgeSettings, load_settings
from sentiment.common.logging_setup import configure_logging
from sentiment.common.tracing import configure_tracing


class BridgeApplication(BaseApplication):
    def __init__(self, settings: BridgeSettings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        self.cfg.set("bind", f"{s.host}:{s.port}")
        self.cfg.set("workers", s.workers)
        self.cfg.set("threads", s.policy().threads)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("timeout", max(30, int(s.timeout_seconds * 3)))
        self.cfg.set("graceful_timeout", max(5, int(s.timeout_seconds) + 2))
        self.cfg.set("loglevel", s.log_level.lower())
        self.cfg.set("accesslog", None)
        self.cfg.set("post_worker_init", lambda worker: _init_worker(s))
        self.cfg.set("child_exit", _forget_worker_metrics)
        if s.port_file:
            self.cfg.set("when_ready", lambda arbiter: _write_port_file(s, arbiter))

    def load(self):
        from rest_bridge.app import create_app  # each worker builds its own app and gRPC channel, after fork

        return create_app(self.settings)


def _init_worker(settings: BridgeSettings) -> None:
    configure_logging(settings.log_level)
    configure_tracing(settings.tracing, "sentiment-bridge")  # after fork: span exporters run threads


def _write_port_file(settings: BridgeSettings, arbiter) -> None:
    from sentiment.common.port_file import write_port_file

    write_port_file(settings.port_file, {"http": arbiter.LISTENERS[0].sock.getsockname()[1]})


def _forget_worker_metrics(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _prepare_multiprocess_metrics() -> None:
    """Every worker writes its metrics to files in this directory; /metrics sums them."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentiment-bridge-metrics-")
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def _shared_jobs_dir(settings: BridgeSettings) -> BridgeSettings:
    """One jobs directory for every worker, made before they fork: a job started by one worker is seen
    (polled, downloaded, cancelled) by all of them."""
    if settings.jobs_dir is not None:
        return settings
    return settings.model_copy(update={"jobs_dir": Path(tempfile.mkdtemp(prefix="sentiment-bridge-jobs-"))})


def main(argv: list[str] | None = None) -> None:
    settings = _shared_jobs_dir(load_settings(argv))
    configure_logging(settings.log_level)
    _prepare_multiprocess_metrics()
    logging.getLogger("rest_bridge.main").info("bridge on %s:%d -> %s", settings.host, settings.port, settings.backend)
    BridgeApplication(settings).run()


if __name__ == "__main__":
    main()
