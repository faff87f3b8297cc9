"""The ``/v2/...`` part of the bridge's OpenAPI document (Open Inference Protocol over REST)."""

from __future__ import annotations

from rest_bridge.oip_schemas import (EmptyOut, InferRequestIn, InferResponseOut, LiveOut, ModelMetadataOut, OipErrorOut,
                                     ReadyOut, RepositoryIndexEntryOut, RepositoryIndexIn, RepositoryModelIn,
                                     ServerMetadataOut)

# (model, mode) pairs for pydantic's models_json_schema
MODELS = [(InferRequestIn, "validation"), (RepositoryIndexIn, "validation"), (RepositoryModelIn, "validation"),
          *((m, "serialization") for m in (InferResponseOut, ModelMetadataOut, ServerMetadataOut, LiveOut, ReadyOut,
                                           OipErrorOut, RepositoryIndexEntryOut, EmptyOut))]

REASONS = {400: "Malformed body, or the server refused the tensors or parameters (INVALID_ARGUMENT), or the call "
                "(FAILED_PRECONDITION: a repository call without --model-control, a version that cannot load)",
           401: "Missing or wrong bearer token", 404: "No model of this name or version (NOT_FOUND)",
           413: "Body larger than the limit", 422: "JSON of the wrong shape or types",
           429: "The service is overloaded (see Retry-After)", 503: "The backend is unavailable or not ready",
           504: "The backend did not answer within the deadline"}


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _answers(ok: str, schema: str, *codes: int, probe: bool = False) -> dict:
    """Probes (live, ready) answer 503 with their own body, false, when the server says no or is unreachable."""
    answers = {"200": {"description": ok, "content": _json(schema)},
               **{str(c): {"description": REASONS[c], "content": _json("OipErrorOut")} for c in codes}}
    if probe:
        answers["503"] = {"description": "Not live or not ready, or the server does not answer", "content": _json(schema)}
    return answers


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "The model's name (`sentiment` by default; GET /v1/models lists the server's models)."}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "One of the model's loaded versions."}


def _model_routes(suffix: str, operation: dict) -> dict:
    return {f"/v2/models/{{name}}{suffix}": {**operation, "parameters": [NAME]},
            f"/v2/models/{{name}}/versions/{{version}}{suffix}": {**operation, "parameters": [NAME, VERSION]}}


def paths() -> dict:
    infer = {"post": {
        "summary": "Classify the texts of the BYTES input `text` (JSON tensors, or the binary tensor extension)",
        "requestBody": {"required": True, "content": _json("InferRequestIn")},
        "responses": _answers("Outputs in the order asked", "InferResponseOut", 400, 401, 404, 413, 422, 429, 503, 504),
    }}
    metadata = {"get": {"summary": "The model's input and output tensors",
                        "responses": _answers("Model metadata", "ModelMetadataOut", 401, 404, 503, 504)}}
    ready = {"get": {"summary": "The model is ready (200) or not (503)",
                     "responses": _answers("Ready", "ReadyOut", 404, probe=True)}}
    return {
        "/v2": {"get": {"summary": "Server name, version and protocol extensions",
                        "responses": _answers("Server metadata", "ServerMetadataOut", 503, 504)}},
        "/v2/health/live": {"get": {"summary": "The inference server is live (200) or not (503)",
                                    "responses": _answers("Live", "LiveOut", probe=True)}},
        "/v2/health/ready": {"get": {"summary": "The inference server is ready (200) or not (503)",
                                     "responses": _answers("Ready", "ReadyOut", probe=True)}},
        **_model_routes("", metadata),
        **_model_routes("/ready", ready),
        **_model_routes("/infer", infer),
        **_repository_paths(),
    }


def _repository_paths() -> dict:
    """Triton's model repository extension: answered when the server runs with --model-control explicit or poll
    (else 400, FAILED_PRECONDITION)."""
    optional = lambda schema: {"required": False, "content": _json(schema)}  # noqa: E731 - tritonclient sends none
    change = lambda summary: {"post": {  # noqa: E731
        "summary": summary, "parameters": [NAME], "requestBody": optional("RepositoryModelIn"),
        "responses": _answers("Done", "EmptyOut", 400, 401, 404, 422, 503, 504)}}
    index_answer = {"description": "Every model version the server knows",
                    "content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/RepositoryIndexEntryOut"}}}}}
    return {
        "/v2/repository/index": {"post": {
            "summary": "Every model version of the repository, with its state (READY, LOADING, UNLOADING, UNAVAILABLE)",
            "requestBody": optional("RepositoryIndexIn"),
            "responses": {**_answers("", "EmptyOut", 400, 401, 422, 503, 504), "200": index_answer}}},
        "/v2/repository/models/{name}/load": change(
            "Load or reload a model: the versions its policy selects warm up, then take over; a version that cannot "
            "load changes nothing (400)"),
        "/v2/repository/models/{name}/unload": change(
            "Unload a model: it stops taking calls and leaves once those it admitted have finished"),
    }
