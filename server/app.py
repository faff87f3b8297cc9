"""Starting and stopping the whole server: model, core, gRPC server, health, signals."""

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
from server.batching.model_thread import model_thread
from server.core.classifier import SequenceClassifier
from server.core.inference import InferenceCore
from server.core.types import CorePolicy
from server.metrics import ServerMetrics
from server.settings import ServerSettings, load_settings
from server.transport.server import create_server, set_serving

log = logging.getLogger("server.app")  # by name: run as `python -m server.app` it is __main__


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    core: InferenceCore
    health: object
    metrics: ServerMetrics
    metrics_port: int | None = None

    async def stop(self, grace: float, lame_duck: float = 0.0) -> None:
        """Graceful stop within ``grace`` seconds: report NOT_SERVING; refuse new calls with UNAVAILABLE
        from our own handlers while every accepted call finishes, and for ``lame_duck`` seconds more;
        only then stop the gRPC server.

        Closing the listener at once would answer CANCELLED to calls that reached the server but not
        yet a handler (grpc/grpc#41785); UNAVAILABLE tells clients to retry elsewhere."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await set_serving(self.health, False)
        try:
            await asyncio.wait_for(self.core.stop(), timeout=grace)
        except asyncio.TimeoutError:
            log.warning("calls still queued after the %.0fs grace period are cut off", grace)
        else:
            lame_duck = max(0.0, min(lame_duck, deadline - loop.time()))
            log.info("queue drained: refusing new calls for %.1fs (lame duck), then closing the listener", lame_duck)
            await asyncio.sleep(lame_duck)
        await self.server.stop(max(0.5, deadline - loop.time()))
        self.metrics.close()


def load_classifier(settings: ServerSettings) -> SequenceClassifier:
    if settings.is_builtin():
        from server.builtin_model import builtin_model_dir, is_built

        if not is_built():
            raise SystemExit(f"the built-in model is missing from {builtin_model_dir()}: rebuild it with "
                             "`sentiment-build-model` (or `make model`)")
    policy = settings.core_policy()
    return SequenceClassifier(settings.model_source(), dtype=settings.dtype, engine=settings.engine,
                              max_batch_size=policy.batching.max_batch_size, name=settings.served_name())


async def start_server(settings: ServerSettings, classifier: SequenceClassifier, executor: Executor | None = None,
                       policy: CorePolicy | None = None) -> RunningServer:
    """Listen at once (health says NOT_SERVING), warm up, then report SERVING. ``executor``: the thread
    the classifier was loaded on (see ``server.batching.model_thread``); ``policy``: the core's limits,
    by default the settings' (tests narrow a constant here)."""
    metrics = ServerMetrics()
    core = InferenceCore(classifier, policy or settings.core_policy(), on_batch=metrics.observe_batch, executor=executor)
    metrics.watch_core(core)
    server, port, health_servicer = create_server(settings, core, metrics)
    await set_serving(health_servicer, False)
    await server.start()
    metrics_port = metrics.serve(settings.host, settings.metrics_port) if settings.metrics_port is not None else None
    log.info("listening on %s:%d (model %s from %s, %s, %s %s); metrics on port %s", settings.host, port,
             classifier.name, classifier.source, classifier.device_name, classifier.engine_name,
             classifier.dtype_name, metrics_port)
    if settings.port_file:
        write_port_file(settings.port_file, {"grpc": port, "metrics": metrics_port})
    await core.start()
    await set_serving(health_servicer, True)
    log.info("serving")
    return RunningServer(server, port, core, health_servicer, metrics, metrics_port)


async def serve(settings: ServerSettings) -> None:
    executor = model_thread(settings.core_policy().batching.model_nice)
    classifier = await asyncio.get_running_loop().run_in_executor(executor, load_classifier, settings)
    running = await start_server(settings, classifier, executor)
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
