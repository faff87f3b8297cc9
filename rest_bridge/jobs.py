"""File scoring as jobs: ``POST /v1/jobs`` takes a CSV or JSONL upload and answers 202 at once; the file
is scored in a background thread (see ``scoring``) while ``GET /v1/jobs/<id>`` reports progress from
any worker (see ``jobstore``), and ``GET /v1/jobs/<id>/result`` downloads it as JSONL or CSV."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

from flask import Blueprint, Response, request
from werkzeug.utils import secure_filename

from clients.retry import WAIT_OUT_OVERLOAD
from clients.types import TRUNCATION
from rest_bridge.backend import Backend
from rest_bridge.errors import HTTP_CODE_NAMES, error_response
from rest_bridge.jobstore import ACTIVE_STATES, JobStore
from rest_bridge.scoring import JobRunner
from rest_bridge.settings import BridgeSettings
from rest_bridge.uploads import JSONL_TYPES, UploadError, read_upload

PREVIEW_ROWS = 20
PREVIEW_CHARS = 200
RAW_TYPES = ("text/csv", "text/tab-separated-values", "text/plain", *JSONL_TYPES)
PREDICTION_COLUMNS = ("predicted_label", "predicted_class")
TRAILING_COLUMNS = ("num_tokens", "truncated", "error")
CHUNK_PAIRS = ("truncation chunk reads one text in windows and cannot take a text pair (pair_field): send truncation "
               "truncate (cut the longer segment first) or reject")


def jobs_blueprint(settings: BridgeSettings, backend: Backend) -> Blueprint:
    policy = backend.policy
    store = JobStore(settings.jobs_dir or Path(tempfile.mkdtemp(prefix="sentiment-bridge-jobs-")), policy.job_ttl_seconds)
    # jobs wait out an overloaded or restarting backend (the client's retry policy), within a few deadlines
    runner = JobRunner(store, backend.client.with_retry(WAIT_OUT_OVERLOAD), backend.in_flight, max_jobs=policy.max_jobs,
                       timeout_seconds=settings.timeout_seconds)
    client = backend.client
    blueprint = Blueprint("jobs", __name__)

    @blueprint.post("/v1/jobs")
    def create_job():
        request.max_content_length = policy.max_upload_bytes
        try:
            options = _job_options()
            data, filename, content_type = _uploaded_file()
            upload = read_upload(data, filename=filename, content_type=content_type, text_field=options["text_field"],
                                 pair_field=options["pair_field"])
        except UploadError as error:
            return error_response(error.status, HTTP_CODE_NAMES[error.status], error.message, error.field)
        # 404 for a model not loaded, 503 if down
        info = client.model_info(timeout=settings.timeout_seconds, model=options["model"],
                                 model_version=options["model_version"])
        if options["pair_field"] and (options["truncation"] or info.long_text) == "chunk":
            source = "" if options["truncation"] else " (the server's --long-text is chunk)"
            return error_response(422, "UNPROCESSABLE_ENTITY", CHUNK_PAIRS + source, "truncation")
        store.sweep()
        job_id = uuid.uuid4().hex
        store.create(job_id, {**_queued_status(job_id, filename, upload, options, info.labels),
                              "model": info.name or None, "model_version": options["model_version"]})
        batch_size = max(1, min(policy.shared_call_texts, info.max_batch_texts or policy.shared_call_texts))
        if not runner.try_start(job_id, upload, batch_size=batch_size, **options):
            store.remove(job_id)
            return error_response(429, "RESOURCE_EXHAUSTED", f"this bridge worker is scoring {policy.max_jobs} "
                                  "files already, its limit; retry later")
        response = _status_response(store, job_id)
        response.status_code = 202
        response.headers["Location"] = f"{request.script_root}/v1/jobs/{job_id}"
        return response

    @blueprint.get("/v1/jobs/<job_id>")
    def job_status(job_id: str):
        return _status_response(store, job_id)

    @blueprint.get("/v1/jobs/<job_id>/result")
    def job_result(job_id: str):
        return _result_response(store, job_id)

    @blueprint.delete("/v1/jobs/<job_id>")
    def delete_job(job_id: str):
        status = store.read_status(job_id)
        if status is None:
            return _no_such_job(job_id)
        if status["state"] in ACTIVE_STATES:
            store.request_cancel(job_id)  # the worker running it (maybe another one) stops and removes it
        else:
            store.remove(job_id)
        return Response(status=204)

    return blueprint


def _job_options() -> dict:
    """The options of ``POST /v1/jobs`` (form fields, or query parameters with a raw body), as ``JobRunner.try_start``
    takes them; an ``UploadError`` (422) names a wrong one."""
    truncation = request.values.get("truncation") or None  # None: the server's --long-text
    if truncation is not None and truncation not in TRUNCATION:
        raise UploadError(422, f"truncation must be one of {', '.join(TRUNCATION)}", "truncation")
    return {"text_field": request.values.get("text_field") or "text",
            "pair_field": request.values.get("pair_field") or None,  # None: every row is a single text
            "truncation": truncation, "model": request.values.get("model") or None,
            "model_version": request.values.get("model_version") or None}


def _queued_status(job_id: str, filename: str, upload, options: dict, labels: list[str]) -> dict:
    return {"id": job_id, "state": "queued", "filename": filename, "format": upload.format, "columns": upload.columns,
            "text_field": options["text_field"], "pair_field": options["pair_field"],
            "truncation": options["truncation"], "total": len(upload.rows), "done": 0, "errors": 0,
            "labels": dict.fromkeys(labels, 0), "created_at": time.time(), "started_at": None, "finished_at": None,
            "error": None}


def _uploaded_file() -> tuple[bytes, str, str]:
    """The file of a multipart form (field ``file``, as browsers and ``curl -F file=@x.csv`` send it), or a
    raw CSV / JSONL body (``curl --data-binary @x.csv -H 'Content-Type: text/csv'``)."""
    if request.mimetype == "multipart/form-data":
        file = request.files.get("file")
        if file is None:
            raise UploadError(422, "send the file in a form field named 'file'")
        return file.read(), file.filename or "", file.mimetype or ""
    if request.mimetype in RAW_TYPES:
        return request.get_data(), request.args.get("filename", ""), request.mimetype
    raise UploadError(415, "send a multipart form with a 'file' field, or a text/csv or application/x-ndjson body")


def _result_response(store: JobStore, job_id: str) -> Response:
    """The scored file, JSONL or CSV (``?format=``), once the job is done."""
    status = store.read_status(job_id)
    if status is None:
        return _no_such_job(job_id)
    if status["state"] in ACTIVE_STATES:
        return error_response(409, "CONFLICT", "the job is still running; download its result when it is done")
    kind = request.args.get("format", "jsonl")
    if kind not in ("jsonl", "csv"):
        return error_response(422, "UNPROCESSABLE_ENTITY", "format must be jsonl or csv", "format")
    lines = _csv_lines(store, job_id, status) if kind == "csv" else _jsonl_lines(store, job_id)
    name = f"{Path(secure_filename(status['filename'] or '')).stem or 'texts'}.scored.{kind}"
    return Response(lines, mimetype="text/csv" if kind == "csv" else "application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _no_such_job(job_id: str) -> Response:
    return error_response(404, "NOT_FOUND", f"no job {job_id!r} (finished jobs are kept for a while, then removed)")


def _status_response(store: JobStore, job_id: str) -> Response:
    status = store.read_status(job_id)
    if status is None:
        return _no_such_job(job_id)
    body = {k: v for k, v in status.items() if k != "owner"}
    fields = (status["text_field"], status.get("pair_field"))
    body["preview"] = [_preview(record, *fields) for record in store.results(job_id, PREVIEW_ROWS)]
    return Response(json.dumps(body), mimetype="application/json")


def _preview(record: dict, text_field: str, pair_field: str | None) -> dict:
    text = record["row"].get(text_field)
    pair = record["row"].get(pair_field) if pair_field else None
    prediction = record.get("prediction")
    return {
        "text": text[:PREVIEW_CHARS] if isinstance(text, str) else None,
        "pair": pair[:PREVIEW_CHARS] if isinstance(pair, str) else None,
        "label": prediction["label"] if prediction else None,
        "score": prediction["scores"][prediction["label"]] if prediction else None,
        "error": record["error"]["message"] if "error" in record else None,
    }


def _jsonl_lines(store: JobStore, job_id: str):
    for record in store.results(job_id):
        extra = {"prediction": record["prediction"]} if "prediction" in record else {"error": record["error"]}
        yield json.dumps({**record["row"], **extra}, ensure_ascii=False) + "\n"


def _csv_lines(store: JobStore, job_id: str, status: dict):
    """The input's columns first, then the prediction's (renamed where the input already has that name)."""
    labels = list(status["labels"])
    taken = set(status["columns"])
    added = {}
    for name in (*PREDICTION_COLUMNS, *(f"score_{label}" for label in labels), *TRAILING_COLUMNS):
        column = name
        while column in taken:
            column = f"_{column}"
        taken.add(column)
        added[name] = column
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line([*status["columns"], *added.values()])
    for record in store.results(job_id):
        row = [_cell(record["row"].get(c)) for c in status["columns"]]
        prediction = record.get("prediction")
        if prediction:
            scores = prediction["scores"]
            row += [prediction["label"], prediction["predicted_class"], *(scores.get(label, "") for label in labels),
                    prediction["num_tokens"], prediction["truncated"], ""]
        else:
            row += ["", "", *("" for _ in labels), "", "", record["error"]["message"]]
        yield line(row)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)

