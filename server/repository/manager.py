"""The model manager: every loaded model version, the routes from (model, version) to its inference core, and
loading, swapping and unloading versions while the server serves.

A request's model is one dict lookup (``core``): ``routes`` maps (name, version) to the version serving it,
with ("name", "") for the version a model's unversioned requests get (its highest loaded) and ("", ...) for
the default model. A load builds and warms every new version first, on model threads of their own, with
the event loop serving all along; then one synchronous step on the event loop replaces ``routes``, so a
call is routed either before the switch or after it, never half-way. A version that loses its routes
finishes the calls it admitted (``InferenceCore.retire``) and is then stopped and dropped. Loads are
all-or-nothing: when any new version fails, those already built are stopped and nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

from server.errors import ModelLoadError, NotAllowed, NotFound, NotReady, ServiceError
from server.repository.layout import Catalogue, version_key
from server.repository.versions import LOADING, READY, UNAVAILABLE, UNLOADING, Loader, Version

log = logging.getLogger(__name__)


class ModelManager:
    def __init__(self, catalogue: Catalogue, loader: Loader):
        self.catalogue = catalogue
        self.loader = loader
        self.routes: dict[tuple[str, str], Version] = {}
        self.versions: dict[tuple[str, str], Version] = {}  # routed: READY
        self.retiring: dict[tuple[str, str], Version] = {}  # UNLOADING: finishing the calls they admitted
        self.loading: set[tuple[str, str]] = set()
        self.failed: dict[tuple[str, str], tuple[str, object]] = {}  # why the last load failed, the files it read
        self.unloaded: set[str] = set()  # unloaded on request: polling leaves them unloaded
        self.started = False
        self.lock = asyncio.Lock()  # one load, unload or poll at a time
        self._retirements: set[asyncio.Task] = set()

    @property
    def default(self) -> str:
        return self.catalogue.default

    # -- routing ---------------------------------------------------------------------------------------------

    def core(self, name: str, version: str):
        """The inference core that answers a request naming ``name`` and ``version`` ("" for either: the
        default model, the version its policy serves)."""
        found = self.routes.get((name, version))
        if found is None:
            self.missing(name, version)
        return found.core

    def version_of(self, name: str, version: str) -> Version:
        found = self.routes.get((name, version))
        if found is None:
            self.missing(name, version)
        return found

    def missing(self, name: str, version: str) -> NoReturn:
        if not self.started:
            raise NotReady("the model is not ready yet")
        model = name or self.default
        served = sorted({n for n, _ in self.versions})
        if not any(n == model for n, _ in self.versions):
            raise NotFound(f"unknown model '{model}'; this server serves {', '.join(repr(n) for n in served)}",
                           field="model_name")
        versions = ", ".join(repr(v.version) for v in self.model_versions(model))
        raise NotFound(f"model '{model}' has no version '{version}'; it serves version {versions}",
                       field="model_version")

    def _route(self) -> None:
        routes: dict[tuple[str, str], Version] = {}
        for version in sorted(self.versions.values(), key=lambda v: version_key(v.version)):
            routes[version.key] = version
            routes[(version.name, "")] = version  # the highest version serves unversioned requests
        for (name, version), target in list(routes.items()):
            if name == self.default:
                routes[("", version)] = target
        self.routes = routes  # one assignment: calls see the old table or the new one

    def model_versions(self, name: str) -> list[Version]:
        return sorted((v for v in self.versions.values() if v.name == name), key=lambda v: version_key(v.version))

    def loaded(self) -> list[tuple[str, str, object]]:
        """(name, version, core) of every version in memory, the ones finishing their calls included."""
        return [(v.name, v.version, v.core) for v in (*self.versions.values(), *self.retiring.values())]

    def listing(self) -> list[tuple[Version, bool]]:
        """Every loaded version, the default model's first, and whether it serves its model's unversioned calls."""
        ordered = sorted([*self.versions.values(), *self.retiring.values()],
                         key=lambda v: (v.name != self.default, v.name, version_key(v.version)))
        return [(v, self.routes.get((v.name, "")) is v) for v in ordered]

    def memory_in_use(self) -> int:
        return sum(v.estimate for v in (*self.versions.values(), *self.retiring.values()))

    # -- starting and stopping -------------------------------------------------------------------------------

    def adopt(self, version: Version) -> None:
        """A version loaded before the manager started (it is warmed up and routed by ``start``)."""
        self.versions[version.key] = version

    async def start(self) -> None:
        """Warm up the adopted versions, load every model the catalogue names (the default first); the first
        failure stops the start."""
        async with self.lock:
            for version in list(self.versions.values()):
                await version.core.start()
            self._route()
            for name in self.catalogue.models:
                await self._load(name)
            self.started = True

    async def stop(self) -> None:
        """Finish what every version has queued, then stop them all (shutdown)."""
        await asyncio.gather(*(v.core.stop() for v in self.versions.values()), *self._retirements)

    # -- loading and unloading -------------------------------------------------------------------------------

    async def load(self, name: str) -> None:
        async with self.lock:
            if name not in self.catalogue.models:
                self.catalogue.refresh()  # a model folder added to the repository since
            await self._load(name)

    async def unload(self, name: str) -> None:
        async with self.lock:
            self.catalogue.get(name)
            if name == self.default:
                raise NotAllowed(f"'{name}' is the default model (the first --model): it cannot be unloaded; load a "
                                 "new version of it instead", field="model_name")
            self.unloaded.add(name)
            self.switch([], self.model_versions(name))

    async def _load(self, name: str) -> None:
        """Bring ``name`` to what its version policy selects now: new versions built and warmed up, then all
        routed at once, and the versions no longer selected retired."""
        model = self.catalogue.get(name)
        wanted = model.wanted()
        if not wanted:
            raise ModelLoadError(f"model '{name}' has no version to load: {model.policy().describe()} of the "
                                 f"numbered folders in {model.folder}, and there are none", field="model_name")
        current = {v.version: v for v in self.model_versions(name)}
        added: list[Version] = []
        try:
            for version, source in wanted.items():
                if version not in current:
                    added.append(await self._start_version(name, version, source, [*current.values(), *added],
                                                           sum(v.estimate for v in added)))
        except BaseException:
            for version in added:
                await version.core.stop()
            raise
        self.unloaded.discard(name)
        self.switch(added, [v for number, v in current.items() if number not in wanted])

    async def _start_version(self, name: str, version: str, source: str, peers: list[Version],
                             pending: int) -> Version:
        key = (name, version)
        self.loading.add(key)
        try:
            started = await self.loader.start(name, version, source, self.memory_in_use() + pending, peers)
        except ModelLoadError as error:
            from server.repository.poll import signature

            self.failed[key] = (error.message, signature(source))
            log.error("%s", error.message)
            raise
        finally:
            self.loading.discard(key)
        self.failed.pop(key, None)
        return started

    def switch(self, added: list[Version], removed: list[Version]) -> None:
        """Route ``added`` and stop routing ``removed`` in one step; ``removed`` then finish their calls."""
        for version in added:
            self.versions[version.key] = version
        for version in removed:
            del self.versions[version.key]
            version.state = UNLOADING
            self.retiring[version.key] = version
        self._route()
        for version in added:
            log.info("version %s of %s takes calls", version.version, version.name)
        for version in removed:
            task = asyncio.get_running_loop().create_task(self._retire(version))
            self._retirements.add(task)
            task.add_done_callback(self._retirements.discard)

    async def _retire(self, version: Version) -> None:
        calls = version.core.calls
        await version.core.retire()
        if self.retiring.get(version.key) is version:
            del self.retiring[version.key]
        log.info("version %s of %s unloaded (it finished the %d calls it had admitted)", version.version,
                 version.name, calls)

    # -- the repository index --------------------------------------------------------------------------------

    def index(self, ready_only: bool = False) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) of every version the server knows, by model then version."""
        rows = []
        for name, model in self.catalogue.models.items():
            try:
                policy, on_disk = model.policy(), model.versions()
            except ServiceError as error:
                policy, on_disk = None, {}
                rows.append((name, "", UNAVAILABLE, error.message))
            known = {*on_disk, *(v for n, v in (*self.versions, *self.retiring, *self.loading, *self.failed) if n == name)}
            for version in sorted(known, key=version_key):
                rows.append((name, version, *self._state(name, version, policy)))
        return [row for row in rows if row[2] == READY] if ready_only else rows

    def _state(self, name: str, version: str, policy) -> tuple[str, str]:
        key = (name, version)
        if key in self.versions:
            return READY, ""
        if key in self.loading:
            return LOADING, ""
        if key in self.retiring:
            return UNLOADING, "finishing the calls it admitted"
        if key in self.failed:
            return UNAVAILABLE, self.failed[key][0]
        if name in self.unloaded:
            return UNAVAILABLE, "unloaded"
        return UNAVAILABLE, f"not selected by its version policy ({policy.describe() if policy else 'unreadable'})"
