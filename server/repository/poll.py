"""``--model-control poll``: the repository read again every ``POLL_SECONDS``, as Triton's POLL mode does.

A model whose version policy now selects other versions (a new version folder under "latest", a removed
one) is loaded again: the new versions warm up and take over, the others finish their calls and go. A
model folder added to the repository is loaded; one removed is unloaded (never the default model). A
version that failed to load is not tried again until its files change (a half-copied folder is retried
once complete, a broken one is not reloaded every poll); a model unloaded on request stays unloaded until
a load asks for it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from server.errors import ServiceError
from server.repository.manager import ModelManager

log = logging.getLogger(__name__)

POLL_SECONDS = 10.0


def signature(source: str) -> object:
    """What changes when a version's files do: every file's name, size and modification time."""
    path = Path(source)
    if not path.is_dir():
        return None
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir()))
    except OSError:
        return None


async def poll_once(manager: ModelManager) -> None:
    async with manager.lock:
        for name in manager.catalogue.refresh():
            log.info("model %s appeared in the repository", name)
        for name, model in list(manager.catalogue.models.items()):
            if model.folder is None or name in manager.unloaded:
                continue
            current = {v.version for v in manager.model_versions(name)}
            try:
                wanted = model.wanted() if model.folder.is_dir() else {}
            except ServiceError as error:
                log.warning("%s", error.message)
                continue
            if set(wanted) == current:
                continue
            if not wanted:
                if current and name != manager.default:
                    log.info("model %s has no version left in the repository: unloading it", name)
                    manager.switch([], manager.model_versions(name))
                continue
            if any(manager.failed.get((name, v), (None, object()))[1] == signature(source)
                   for v, source in wanted.items() if v not in current):
                continue  # it failed with these very files: wait until they change
            try:
                await manager._load(name)
            except ServiceError as error:
                log.warning("polling: %s", error.message)


async def poll_forever(manager: ModelManager, seconds: float | None = None) -> None:
    while True:
        await asyncio.sleep(seconds or POLL_SECONDS)
        try:
            await poll_once(manager)
        except Exception:  # noqa: BLE001 - one bad scan must not end polling
            log.exception("polling the model repository failed")
