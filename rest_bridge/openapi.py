"""The OpenAPI 3.1 document of the bridge, generated from the pydantic models it validates with."""

from __future__ import annotations

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from clients.types import TRUNCATION, ModelInfo
from rest_bridge import classify_openapi, oip_openapi
from rest_bridge.schemas import (ErrorOut, ExplainIn, ExplainOut, JobStatusOut, ModelsOut, PredictBatchOut, PredictIn,
                                 PredictionOut, StatusOut)

REF = "#/components/schemas/{model}"


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _errors(*codes: int) -> dict:
    reasons = {400: "Malformed JSON, or the service refused the input (INVALID_ARGUMENT)",
               401: "Missing or wrong bearer token",
               404: "No such job (or it expired), or no such model or version (NOT_FOUND)",
               409: "The job is still running", 413: "Body larger than the limit",
               415: "Content-Type is not application/json", 422: "JSON of the wrong shape or types",
               429: "The service is overloaded (see Retry-After)", 503: "The backend is unavailable",
               504: "The backend did not answer within the deadline"}
    return {str(c): {"description": reasons[c], "content": _json("ErrorOut")} for c in codes}


def _schemas() -> dict:
    """Every schema the document refers to, as components."""
    _, schema = models_json_schema(
        [(m, "validation" if m in (PredictIn, ExplainIn) else "serialization")
         for m in (PredictIn, PredictionOut, PredictBatchOut, ExplainIn, ExplainOut, ErrorOut, StatusOut, JobStatusOut,
                   ModelsOut)]
        + classify_openapi.MODELS + oip_openapi.MODELS,
        ref_template=REF,
    )
    # /v1/model answers the client's ModelInfo as it is: its schema comes from that dataclass
    model_info = TypeAdapter(ModelInfo).json_schema(ref_template=REF)
    schema["$defs"].update(model_info.pop("$defs", {}))  # what it refers to (BatchCost) goes to components too
    schema["$defs"]["ModelInfo"] = model_info
    return schema["$defs"]


def _api_paths() -> dict:
    """The bridge's own routes (``rest_bridge.api``)."""
    predict_responses = {
        "200": {"description": "One prediction for `text`, or `{\"predictions\": [...]}` for `texts`",
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/PredictionOut"},
                    {"$ref": "#/components/schemas/PredictBatchOut"}]}}}},
        **_errors(400, 401, 404, 413, 415, 422, 429, 503, 504),
    }
    model_query = [{"name": "model", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "Which of the server's models (default: its default model)."},
                   {"name": "version", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "Which version (default: the one its policy serves)."}]
    return {
        "/predict": {"post": {
            "summary": "Classify one text or several",
            "requestBody": {"required": True, "content": _json("PredictIn")},
            "responses": predict_responses,
        }},
        "/explain": {"post": {
            "summary": "Each word's attribution to the predicted label (or a named one), by Integrated Gradients",
            "description": "Costs tens of forward and backward passes; the server runs a few at once and "
                           "answers 429 past its limit.",
            "requestBody": {"required": True, "content": _json("ExplainIn")},
            "responses": {"200": {"description": "The explanation", "content": _json("ExplainOut")},
                          **_errors(400, 401, 404, 413, 415, 422, 429, 503, 504)},
        }},
        "/v1/model": {"get": {"summary": "A served model (by default the default model) and its settings",
                              "parameters": model_query,
                              "responses": {"200": {"description": "Model info", "content": _json("ModelInfo")},
                                            **_errors(401, 404, 503, 504)}}},
        "/v1/models": {"get": {"summary": "Every model version the server has loaded, the default model's first; "
                                          "also one card per model in OpenAI's and vLLM's list shape (`data`)",
                               "responses": {"200": {"description": "The loaded versions", "content": _json("ModelsOut")},
                                             **_errors(401, 503, 504)}}},
        "/healthz": {"get": {"summary": "The bridge process is alive",
                             "responses": {"200": {"description": "Alive", "content": _json("StatusOut")}}}},
        "/readyz": {"get": {"summary": "The gRPC backend reports SERVING (and lists every model version it serves)",
                            "responses": {"200": {"description": "Ready", "content": _json("StatusOut")},
                                          "503": {"description": "Not ready", "content": _json("StatusOut")}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics of every worker",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }


def build_openapi(version: str) -> dict:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Sentiment REST bridge", "version": version,
                 "description": "JSON over HTTP in front of the sentiment.v1 gRPC service, vLLM's classification "
                                "API (/classify, /v1/classify), and the Open Inference Protocol (KServe v2) REST API "
                                "under /v2."},
        "tags": [{"name": "api", "description": "Predictions, the model, health"},
                 {"name": "file scoring", "description": "Score a CSV or JSONL file as a background job"},
                 {"name": "pages", "description": "The bridge's web pages (HTML) and their files"}],
        "paths": {**_api_paths(), **classify_openapi.paths(), **oip_openapi.paths(), **_job_paths(), **_page_paths()},
        "components": {"schemas": _schemas()},
    }
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                operation.setdefault("tags", ["api"])
    return document


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}


def _job_paths() -> dict:
    options = {
        "truncation": {"type": "string", "enum": list(TRUNCATION),
                       "description": "Texts over the model's token limit: as in /predict (default: the server's "
                                      "--long-text)."},
        "text_field": {"type": "string", "default": "text", "description": "The column holding the text."},
        "pair_field": {"type": "string", "description": "A column holding each row's text pair (an aspect, a "
                       "hypothesis), read with its text as /predict reads `text_pair` (default: none, single texts). "
                       "The file must have it (422 naming `pair_field`); a row whose pair is blank, null or absent "
                       "gets an `error` of its own; truncation chunk cannot read pairs (422 naming `truncation`, also "
                       "when chunk is the server's --long-text and the job sends no truncation)."},
        "model": {"type": "string", "description": "Which of the server's models scores the file (default: its "
                                                    "default model; 404 for one it has not loaded)."},
        "model_version": {"type": "string", "description": "Which version of it (default: the one its policy serves)."},
    }
    raw_file = {"schema": {"type": "string"}}
    upload = {"schema": {"type": "string", "minLength": 1}}  # an empty file has no rows: 422
    return {
        "/v1/jobs": {"post": {
            "summary": "Score a CSV or JSONL file in the background", "tags": ["file scoring"],
            "description": "Answers 202 at once with the job's status (and its URL in `Location`); poll it, then "
                           "download the result. The file is capped by `--max-upload-bytes`. Send a form "
                           "(`curl -F file=@reviews.csv`) or the file itself as the body, its options then as "
                           "query parameters (`?text_field=review&pair_field=aspect`).",
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "CSV with a header row, or JSON lines (one object per line)"},
                    **options}}},
                "text/csv": upload, "application/x-ndjson": upload}},
            "responses": {"202": {"description": "Accepted: the job's status", "content": _json("JobStatusOut"),
                                  "headers": {"Location": {"schema": {"type": "string"},
                                                           "description": "The job's status URL"}}},
                          **_errors(400, 401, 404, 413, 415, 422, 429, 503, 504)},
        }},
        "/v1/jobs/{job_id}": {
            "parameters": [JOB_ID],
            "get": {"summary": "A job's progress, label counts and first rows", "tags": ["file scoring"],
                    "responses": {"200": {"description": "The job's status", "content": _json("JobStatusOut")},
                                  **_errors(401, 404)}},
            "delete": {"summary": "Cancel a running job, or delete a finished one", "tags": ["file scoring"],
                       "responses": {"204": {"description": "Cancelled or deleted"}, **_errors(401, 404)}},
        },
        "/v1/jobs/{job_id}/result": {
            "parameters": [JOB_ID],
            "get": {"summary": "Download the scored file", "tags": ["file scoring"],
                    "description": "JSONL: every input object plus `prediction` (as /predict answers) or `error`. "
                                   "CSV: the input's columns, then `predicted_label`, `predicted_class`, a "
                                   "`score_<label>` per class, `num_tokens`, `truncated` and `error`.",
                    "parameters": [{"name": "format", "in": "query", "schema": {"enum": ["jsonl", "csv"],
                                                                                "default": "jsonl"}}],
                    "responses": {"200": {"description": "The scored rows, in input order", "content": {
                        "application/x-ndjson": raw_file, "text/csv": raw_file}},
                        **_errors(401, 404, 409, 422)}},
        },
    }


def _page_paths() -> dict:
    def page(summary: str) -> dict:
        return {"get": {"summary": summary, "tags": ["pages"],
                        "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}}

    def files(summary: str) -> dict:
        return {"get": {"summary": summary, "tags": ["pages"],
                        "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "The file"}, **_errors(404)}}}

    return {
        "/": page("The playground: classify a text, see its scores and which words mattered"),
        "/score": page("Score a CSV or JSONL file and download the result"),
        "/docs": page("This document in Swagger UI"),
        "/docs/assets/{filename}": files("Swagger UI's files (from the flask-swagger-ui package)"),
        "/static/{filename}": files("The pages' stylesheet and scripts"),
    }
