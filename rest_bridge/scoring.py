"""Scoring one uploaded file in a background thread: batched ``PredictBatch`` calls through the bridge's
own gRPC client, each holding one of the bridge's in-flight slots, so a job never pushes the bridge past
``--max-concurrent-requests`` (it waits for a slot; callers of /predict are refused as before). The client
it is given waits out an overloaded or restarting backend (``clients.retry.WAIT_OUT_OVERLOAD``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from clients.client import SentimentClient
from clients.errors import SentimentError
from clients.retry import PER_TEXT_CODES
from clients.types import PredictOptions
from rest_bridge.jobstore import JobStore
from rest_bridge.uploads import Upload

log = logging.getLogger(__name__)

GATE_POLL_SECONDS = 0.25
# How many of the bridge's deadlines one call of a job may take, waiting out an overloaded backend.
JOB_CALL_DEADLINES = 3


class JobCancelled(Exception):
    pass


class JobRunner:
    def __init__(self, store: JobStore, client: SentimentClient, gate: threading.Semaphore, *,
                 max_jobs: int, timeout_seconds: float):
        self.store = store
        self.client = client
        self.gate = gate
        self.slots = threading.BoundedSemaphore(max_jobs)
        self.call_seconds = JOB_CALL_DEADLINES * timeout_seconds  # one call, its waits for the backend included

    def try_start(self, job_id: str, upload: Upload, *, text_field: str, truncation: str | None, batch_size: int,
                  model: str | None = None, model_version: str | None = None) -> bool:
        """Start the job's thread, or return False when this worker already runs ``max_jobs`` jobs. ``model``,
        ``model_version``: which of the server's models scores it (None: the default)."""
        if not self.slots.acquire(blocking=False):
            return False
        options = PredictOptions(truncation=truncation, model=model, model_version=model_version)
        thread = threading.Thread(target=self._run, args=(job_id, upload, text_field, options, batch_size),
                                  daemon=True, name=f"job-{job_id[:8]}")
        thread.start()
        return True

    def _run(self, job_id: str, upload: Upload, text_field: str, options: PredictOptions, batch_size: int) -> None:
        try:
            status = {**self.store.read_status(job_id), "state": "running", "started_at": time.time()}
            self.store.write_status(job_id, status)
            try:
                for start in range(0, len(upload.rows), batch_size):
                    if self.store.cancel_requested(job_id):
                        raise JobCancelled
                    records = self._score(job_id, upload.rows[start:start + batch_size], text_field, options)
                    self.store.append_results(job_id, records)
                    _count(status, records)
                    self.store.write_status(job_id, status)
                status["state"] = "done"
            except JobCancelled:
                self.store.remove(job_id)
                return
            except SentimentError as error:
                status.update(state="failed", error={"code": error.code, "message": error.message})
            except Exception:  # noqa: BLE001 - a job must end in a state the page can show
                log.exception("file-scoring job %s failed", job_id)
                status.update(state="failed", error={"code": "INTERNAL", "message": "internal error in the bridge"})
            status["finished_at"] = time.time()
            if not self.store.cancel_requested(job_id):
                self.store.write_status(job_id, status)
            else:
                self.store.remove(job_id)
        finally:
            self.slots.release()

    def _score(self, job_id: str, rows: list[dict], text_field: str, options: PredictOptions) -> list[dict]:
        records: list[dict] = [{"row": row} for row in rows]
        scorable = [i for i, row in enumerate(rows) if isinstance(row.get(text_field), str) and row[text_field]]
        for i, record in enumerate(records):
            if i not in scorable:
                record["error"] = {"code": "INVALID_ARGUMENT", "message": f"the row has no text in {text_field!r}"}
        texts = [rows[i][text_field] for i in scorable]
        if not texts:
            return records
        try:
            predictions = [{"prediction": p.to_dict()} for p in self._call(job_id, lambda timeout: self.client.predict_batch(
                texts, options=options, timeout=timeout, request_id=job_id))]
        except SentimentError as error:
            if error.code not in PER_TEXT_CODES:
                raise
            predictions = [self._score_one(job_id, text, options) for text in texts]
        for i, prediction in zip(scorable, predictions):
            records[i].update(prediction)
        return records

    def _score_one(self, job_id: str, text: str, options: PredictOptions) -> dict:
        try:
            prediction = self._call(job_id, lambda timeout: self.client.predict(
                text, options=options, timeout=timeout, request_id=job_id))
        except SentimentError as error:
            if error.code not in PER_TEXT_CODES:
                raise
            return {"error": {"code": error.code, "message": error.message}}
        return {"prediction": prediction.to_dict()}

    def _call(self, job_id: str, call: Callable[[float], object]):
        """One call in one in-flight slot (waited for, the job's cancellation checked while it waits)."""
        while not self.gate.acquire(timeout=GATE_POLL_SECONDS):
            if self.store.cancel_requested(job_id):
                raise JobCancelled
        try:
            return call(self.call_seconds)
        finally:
            self.gate.release()


def _count(status: dict, records: list[dict]) -> None:
    status["done"] += len(records)
    for record in records:
        if "error" in record:
            status["errors"] += 1
        else:
            label = record["prediction"]["label"]
            status["labels"][label] = status["labels"].get(label, 0) + 1
