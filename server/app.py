"""Starting and stopping the whole server: its models (the repository manager), gRPC server, health, signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import Executor
from dataclasses import dataclass

import grpc

from sentiment.common.logging_setup import configure_logging
from sentiment.common.port_file import write_port_file
from sentiment.common.tracing import configure_tracing
from server.core.classifier import SequenceClassifier
from server.core.inference import InferenceCore
from server.core.types import CorePolicy
from server.errors import ServiceError
from server.metrics import ServerMetrics
from server.repository import memory
from server.repository.layout import read_catalogue
from server.repository.manager import ModelManager
from server.repository.poll import poll_forever
from server.repository.versions import Loader
from server.settings import ServerSettings, load_settings
from server.transport.server import create_server, set_serving

log = logging.getLogger("server.app")  # by name: run as `python -m server.app` it is __main__


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    manager: ModelManager
    health: object
    metrics: ServerMetrics
    metrics_port: int | None = None
    poller: asyncio.Task | None = None

    @property
    def core(self) -> InferenceCore:
        """The inference core of the default model's serving version."""
        return self.manager.core("", "")

    async def stop(self, grace: float, lame_duck: float = 0.0) -> None:
        """Graceful stop within ``grace`` seconds: report NOT_SERVING; refuse new calls with UNAVAILABLE
        from our own handlers while every accepted call finishes, and for ``lame_duck`` seconds more;
        only then stop the gRPC server.

        Closing the listener at once would answer CANCELLED to calls that reached the server but not
        yet a handler (grpc/grpc#41785); UNAVAILABLE tells clients to retry elsewhere."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await set_serving(self.health, False)
        if self.poller is not None:
            self.poller.cancel()
        try:
            await asyncio.wait_for(self.manager.stop(), timeout=grace)
        except asyncio.TimeoutError:
            log.warning("calls still queued after the %.0fs grace period are cut off", grace)
        else:
            lame_duck = max(0.0, min(lame_duck, deadline - loop.time()))
            log.info("queue drained: refusing new calls for %.1fs (lame duck), then closing the listener", lame_duck)
            await asyncio.sleep(lame_duck)
        await self.server.stop(max(0.5, deadline - loop.time()))
        self.metrics.close()


def load_classifier(settings: ServerSettings, source: str | None = None) -> SequenceClassifier:
    """The classifier of one model source (default: the first --model's), loaded on the calling thread."""
    if settings.is_builtin(source):
        from server.builtin_model import builtin_model_dir, is_built

        if not is_built():
            raise SystemExit(f"the built-in model is missing from {builtin_model_dir()}: rebuild it with "
                             "`sentiment-build-model` (or `make model`)")
    policy = settings.core_policy(source)
    return SequenceClassifier(settings.model_source(source), dtype=settings.dtype, engine=settings.engine,
                              max_batch_size=policy.batching.max_batch_size, name=settings.served_name(source))


def model_manager(settings: ServerSettings, metrics: ServerMetrics, policy: CorePolicy | None = None) -> ModelManager:
    """The manager of every model ``--model`` names; ``policy``: every core's limits (tests narrow them)."""
    cuda = torch_sees_cuda()
    explains = settings.max_concurrent_explanations > 0
    loader = Loader(
        build=lambda source: load_classifier(settings, source),
        policy=(lambda source: policy) if policy else settings.core_policy,
        estimate=lambda source: memory.estimate_bytes(settings.model_source(source), engine=settings.engine,
                                                      dtype=settings.dtype, cuda=cuda, explains=explains,
                                                      max_batch_tokens=settings.max_batch_tokens),
        on_batch=metrics.batch_observer,
        budget=settings.model_memory_mb * 1024 * 1024 if settings.model_memory_mb else None,
        model_nice=settings.core_policy().batching.model_nice,
    )
    return ModelManager(read_catalogue(settings.model_entries()), loader)


def torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


async def start_server(settings: ServerSettings, classifier: SequenceClassifier | None = None,
                       executor: Executor | None = None, policy: CorePolicy | None = None) -> RunningServer:
    """Listen at once (health says NOT_SERVING), load and warm up every model, then report SERVING.
    ``classifier``: the default model, loaded already (on ``executor``, its model thread: see
    ``server.batching.model_thread``); ``policy``: the cores' limits, by default the settings' (tests
    narrow a constant here)."""
    metrics = ServerMetrics()
    manager = model_manager(settings, metrics, policy)
    metrics.watch_models(manager.loaded)
    server, port, health_servicer = create_server(settings, manager, metrics)
    await set_serving(health_servicer, False)
    await server.start()
    metrics_port = metrics.serve(settings.host, settings.metrics_port) if settings.metrics_port is not None else None
    log.info("listening on %s:%d; metrics on port %s; model control %s", settings.host, port, metrics_port,
             settings.model_control)
    if settings.port_file:
        write_port_file(settings.port_file, {"grpc": port, "metrics": metrics_port})
    if classifier is not None:
        name, version, source = settings.model_spec()
        manager.adopt(manager.loader.adopt(name, version, source, classifier, executor, policy))
    await manager.start()
    poller = asyncio.get_running_loop().create_task(poll_forever(manager)) if settings.model_control == "poll" else None
    await set_serving(health_servicer, True)
    log.info("serving %s (default: %s)", ", ".join(f"{n}:{v}" for n, v, _ in manager.loaded()), manager.default)
    return RunningServer(server, port, manager, health_servicer, metrics, metrics_port, poller)


async def serve(settings: ServerSettings) -> None:
    try:
        running = await start_server(settings)
    except ServiceError as error:
        raise SystemExit(f"cannot start: {error.message}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing calls in flight (grace %.0fs)", settings.grace_seconds)
    await running.stop(settings.grace_seconds, settings.lame_duck_seconds)
    log.info("stopped")


def quiet_libraries() -> None:
    """No progress bars or notices from transformers on start-up: the server logs one line per stage."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings.log_level)
    quiet_libraries()
    configure_tracing(settings.tracing, "sentiment-server")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
