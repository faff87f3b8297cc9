"""Starting and stopping the whole server: model, core, gRPC server, health, signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import Executor
from dataclasses import dataclass

import grpc
import torch

from sentiment.common.logging_setup import configure_logging
from sentiment.common.tracing import configure_tracing
from server.batching.queue import model_thread
from server.core.inference import InferenceCore
from server.transport.server import create_server, set_serving
from server.metrics import ServerMetrics
from server.engines.loading import SequenceClassifier
from sentiment.common.port_file import write_port_file
from server.settings import BUILTIN, ServerSettings, load_settings

log = logging.getLogger(__name__)


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
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if settings.model == BUILTIN:
        from server.builtin_model import builtin_model_dir, is_built

        if not is_built():
            # the server never trains: `make serve` and `sentiment-serve-all` build it first
            raise SystemExit(f"the built-in model is not built in {builtin_model_dir()}: build it with "
                             "`sentiment-build-model` (or `make model`), or start with `sentiment-serve-all`")
        log.info("serving the built-in model from %s", builtin_model_dir())
    return SequenceClassifier(settings.model_source(), device=settings.device, dtype=settings.dtype,
                              engine=settings.engine, max_tokens=settings.max_input_tokens,
                              max_batch_size=settings.max_batch_size, recheck_margin=settings.recheck_margin)


async def start_server(settings: ServerSettings, classifier: SequenceClassifier,
                       executor: Executor | None = None) -> RunningServer:
    """Listen at once (health says NOT_SERVING), warm up, then report SERVING. ``executor``: the thread
    the classifier was loaded on (see ``server.batching.queue.model_thread``)."""
    metrics = ServerMetrics()
    core = InferenceCore(classifier, settings, metrics, executor)
    server, port, health_servicer = create_server(settings, core)
    await set_serving(health_servicer, False)
    await server.start()
    metrics_port = metrics.serve(settings.metrics_host or settings.host, settings.metrics_port) if settings.metrics else None
    log.info("listening on %s:%d (model %s, %s, %s %s); metrics on port %s", settings.host, port, classifier.source,
             classifier.device_name, classifier.engine_name, classifier.dtype_name, metrics_port)
    if settings.port_file:
        write_port_file(settings.port_file, {"grpc": port, "metrics": metrics_port})
    await core.start()
    await set_serving(health_servicer, True)
    log.info("serving")
    return RunningServer(server, port, core, health_servicer, metrics, metrics_port)


async def serve(settings: ServerSettings) -> None:
    executor = model_thread(settings.model_nice)
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


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(argv)
    configure_logging(settings.log_level)
    configure_tracing(settings.tracing, "sentiment-server")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
