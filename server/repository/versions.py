"""One loaded model version, and how one is loaded: a classifier built on a model thread of its own, its
memory estimated and checked against the budget first, its head checked against the versions it joins,
and its inference core warmed up before anything routes a call to it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from server.batching.model_thread import model_thread
from server.core.inference import InferenceCore
from server.core.types import CorePolicy
from server.errors import ModelLoadError
from server.repository import memory

log = logging.getLogger(__name__)

READY, LOADING, UNLOADING, UNAVAILABLE = "READY", "LOADING", "UNLOADING", "UNAVAILABLE"
MIB = 1024 * 1024


class Refused(ModelLoadError):
    """A version refused before or after its files were read (the budget, its head): the message says why."""


@dataclass
class Version:
    """A loaded version: READY while calls route to it, UNLOADING while the calls it admitted finish."""

    name: str
    version: str
    source: str
    core: InferenceCore
    estimate: int  # bytes, what the memory budget counts
    state: str = READY

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)


@dataclass(frozen=True)
class Loader:
    """What loading a version takes from the server: ``build(source)`` makes its classifier (on the version's
    own model thread), ``policy(source)`` its core's limits, ``estimate(source)`` its memory in bytes,
    ``on_batch(name, version)`` the metrics hook of its batches, ``budget`` the memory budget (None: none)."""

    build: Callable[[str], object]
    policy: Callable[[str], CorePolicy]
    estimate: Callable[[str], int]
    on_batch: Callable[[str, str], Callable]
    budget: int | None
    model_nice: int = 5

    def check_budget(self, name: str, version: str, estimate: int, in_use: int) -> None:
        if self.budget is not None and in_use + estimate > self.budget:
            raise Refused(
                f"version {version} of {name!r} needs about {estimate / MIB:.0f} MiB by its estimate and the loaded "
                f"versions take {in_use / MIB:.0f} MiB of the {self.budget / MIB:.0f} MiB budget (--model-memory-mb): "
                "unload a model first; the versions being served are unchanged")

    async def start(self, name: str, version: str, source: str, in_use: int, peers: list[Version]) -> Version:
        """Load, check and warm up one version; any failure is a ``ModelLoadError`` naming it, with nothing
        left running."""
        loop = asyncio.get_running_loop()
        started, before = time.perf_counter(), memory.resident_bytes()
        executor = core = None
        try:
            estimate = self.estimate(source)
            self.check_budget(name, version, estimate, in_use)
            executor = model_thread(self.model_nice)
            classifier = await loop.run_in_executor(executor, self.build, source)
            check_head(name, version, classifier, peers)
            core = InferenceCore(classifier, self.policy(source), on_batch=self.on_batch(name, version),
                                 executor=executor)
            await core.start()
        except BaseException as error:
            if core is not None:
                await core.stop()
            elif executor is not None:
                executor.shutdown(wait=False)
            if isinstance(error, Refused) or not isinstance(error, Exception):
                raise
            reason = error.message if isinstance(error, ModelLoadError) else f"{type(error).__name__}: {error}"
            raise ModelLoadError(f"version {version} of {name!r} could not load from {source}: {reason}; "
                                 "the versions being served are unchanged") from error
        log.info("loaded version %s of %s from %s in %.1fs (estimated %.0f MiB; resident memory grew %.0f MiB)",
                 version, name, source, time.perf_counter() - started, estimate / MIB,
                 (memory.resident_bytes() - before) / MIB)
        return Version(name, version, source, core, estimate)

    def adopt(self, name: str, version: str, source: str, classifier, executor: Executor | None,
              policy: CorePolicy | None) -> Version:
        """A version whose classifier was loaded already (the server's first model, and tests')."""
        core = InferenceCore(classifier, policy or self.policy(source), on_batch=self.on_batch(name, version),
                             executor=executor)
        return Version(name, version, source, core, self.estimate(source))


def check_head(name: str, version: str, classifier, peers: list[Version]) -> None:
    """A new version must answer as the versions it joins do: the same labels, in the same order, and the
    same kind of head (callers read both)."""
    for peer in peers:
        theirs = peer.core.classifier
        if (list(classifier.labels), classifier.problem_type) != (list(theirs.labels), theirs.problem_type):
            raise Refused(
                f"version {version} of {name!r} has a different head ({classifier.problem_type}, labels "
                f"{', '.join(classifier.labels)}) from version {peer.version} ({theirs.problem_type}, labels "
                f"{', '.join(theirs.labels)}): a new version must keep the model's labels; serve it under a new name")
