"""File-scoring jobs kept on disk, so that every gunicorn worker sees every job.

gunicorn runs several worker processes and a browser's polls land on any of them, so a job cannot
live in one worker's memory. A job is a directory under the jobs directory (one per bridge, made
before the workers fork, or a volume shared by replicas):

- ``status.json``: state, progress and label counts, rewritten atomically (write, then rename);
- ``results.jsonl``: one line per scored row, in input order, appended by the one thread running it;
- ``cancel``: a marker any worker may drop; the running thread stops at its next batch.

The thread that scores a job runs in the worker that accepted the upload and records its host and
pid; a reader on the same host that finds that process gone reports the job as failed instead of
leaving it "running" forever."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
ACTIVE_STATES = ("queued", "running")
STATUS_FILE = "status.json"
RESULTS_FILE = "results.jsonl"
CANCEL_FILE = "cancel"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


class JobStore:
    def __init__(self, root: Path, ttl_seconds: float):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl_seconds = ttl_seconds
        self.host = socket.gethostname()

    def _dir(self, job_id: str) -> Path | None:
        return self.root / job_id if JOB_ID.match(job_id) else None

    def create(self, job_id: str, status: dict) -> None:
        (self.root / job_id).mkdir()
        (self.root / job_id / RESULTS_FILE).touch()
        self.write_status(job_id, {**status, "owner": {"host": self.host, "pid": os.getpid()}})

    def write_status(self, job_id: str, status: dict) -> None:
        directory = self._dir(job_id)
        temporary = directory / f".{STATUS_FILE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({**status, "updated_at": time.time()}))
        os.replace(temporary, directory / STATUS_FILE)

    def read_status(self, job_id: str) -> dict | None:
        """The job's status, or None when there is no such job (or it was removed meanwhile)."""
        directory = self._dir(job_id)
        try:
            status = json.loads((directory / STATUS_FILE).read_text()) if directory else None
        except (FileNotFoundError, NotADirectoryError):
            return None
        if status and status["state"] in ACTIVE_STATES and self._owner_gone(status.get("owner", {})):
            status = {**status, "state": "failed", "error": {
                "code": "ABORTED", "message": "the bridge worker that was scoring this file stopped; upload it again"}}
        return status

    def _owner_gone(self, owner: dict) -> bool:
        return owner.get("host") == self.host and not _process_alive(owner.get("pid", 0))

    def append_results(self, job_id: str, records: list[dict]) -> None:
        with (self._dir(job_id) / RESULTS_FILE).open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    def results(self, job_id: str, limit: int | None = None) -> Iterator[dict]:
        with (self._dir(job_id) / RESULTS_FILE).open(encoding="utf-8") as handle:
            for count, line in enumerate(handle):
                if (limit is not None and count >= limit) or not line.endswith("\n"):
                    return  # (a line without its newline is being written right now)
                yield json.loads(line)

    def request_cancel(self, job_id: str) -> None:
        try:
            (self._dir(job_id) / CANCEL_FILE).touch()
        except FileNotFoundError:  # it ended and was removed meanwhile
            pass

    def cancel_requested(self, job_id: str) -> bool:
        return (self._dir(job_id) / CANCEL_FILE).exists()

    def remove(self, job_id: str) -> None:
        directory = self._dir(job_id)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)

    def sweep(self) -> None:
        """Remove jobs that finished longer than the TTL ago (and the remains of dead workers' jobs)."""
        cutoff = time.time() - self.ttl_seconds
        for directory in self.root.iterdir():
            status = self.read_status(directory.name)
            if status and status["state"] not in ACTIVE_STATES and status.get("updated_at", 0) < cutoff:
                self.remove(directory.name)
