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
from clients.types import PredictOptions, is_pair
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
                  pair_field: str | None = None, model: str | None = None, model_version: str | None = None) -> bool:
        """Start the job's thread, or return False when this worker already runs ``max_jobs`` jobs. ``pair_field``:
        the column of each row's text pair (None: single texts). ``model``, ``model_version``: which of the
        server's models scores it (None: the default)."""
        if not self.slots.acquire(blocking=False):
            return False
        options = PredictOptions(truncation=truncation, model=model, model_version=model_version)
        fields = (text_field, pair_field)
        thread = threading.Thread(target=self._run, args=(job_id, upload, fields, options, batch_size),
                                  daemon=True, name=f"job-{job_id[:8]}")
        thread.start()
        return True

    def _run(self, job_id: str, upload: Upload, fields: tuple[str, str | None], options: PredictOptions,
             batch_size: int) -> None:
        try:
            status = {**self.store.read_status(job_id), "state": "running", "started_at": time.time()}
            self.store.write_status(job_id, status)
            try:
                for start in range(0, len(upload.rows), batch_size):
                    if self.store.cancel_requested(job_id):
                        raise JobCancelled
                    records = self._score(job_id, upload.rows[start:start + batch_size], fields, options)
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

    def _score(self, job_id: str, rows: list[dict], fields: tuple[str, str | None],
               options: PredictOptions) -> list[dict]:
        """One batch of rows: a row without a text (or, with a pair column, without a pair) gets an error of its
        own; the others go in one PredictBatch, or one by one when the server refuses one of them."""
        text_field, pair_field = fields
        records: list[dict] = [{"row": row} for row in rows]
        scorable = []
        for i, record in enumerate(records):
            problem = _row_problem(record["row"], text_field, pair_field)
            if problem:
                record["error"] = {"code": "INVALID_ARGUMENT", "message": problem}
            else:
                scorable.append(i)
        texts = [rows[i][text_field] for i in scorable]
        pairs = None if pair_field is None else [rows[i][pair_field] for i in scorable]
        if not texts:
            return records
        try:
            predictions = [{"prediction": p.to_dict()} for p in self._call(job_id, lambda timeout: self.client.predict_batch(
                texts, text_pairs=pairs, options=options, timeout=timeout, request_id=job_id))]
        except SentimentError as error:
            if error.code not in PER_TEXT_CODES:
                raise
            predictions = [self._score_one(job_id, text, pair, options)
                           for text, pair in zip(texts, pairs or [None] * len(texts))]
        for i, prediction in zip(scorable, predictions):
            records[i].update(prediction)
        return records

    def _score_one(self, job_id: str, text: str, pair: str | None, options: PredictOptions) -> dict:
        try:
            prediction = self._call(job_id, lambda timeout: self.client.predict(
                text, text_pair=pair, options=options, timeout=timeout, request_id=job_id))
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


def _row_problem(row: dict, text_field: str, pair_field: str | None) -> str | None:
    """Why a row cannot be scored before it reaches the server, or None. A job with a pair column scores every
    row as a pair, as /predict with ``text_pair`` would: a blank, null or absent pair is that row's error (the
    server refuses a blank pair, and sentiment.v1 would read an empty one as no pair at all)."""
    if not (isinstance(row.get(text_field), str) and row[text_field]):
        return f"the row has no text in {text_field!r}"
    if pair_field is not None and not is_pair(row.get(pair_field)):
        return f"the row has no text pair in {pair_field!r}"
    return None


def _count(status: dict, records: list[dict]) -> None:
    status["done"] += len(records)
    for record in records:
        if "error" in record:
            status["errors"] += 1
        else:
            label = record["prediction"]["label"]
            status["labels"][label] = status["labels"].get(label, 0) + 1
