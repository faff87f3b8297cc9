"""The ``/v2/...`` part of the bridge's OpenAPI document (Open Inference Protocol over REST)."""

from __future__ import annotations

from rest_bridge.oip_schemas import (InferRequestIn, InferResponseOut, LiveOut, ModelMetadataOut, OipErrorOut,
                                     ReadyOut, ServerMetadataOut)

# (model, mode) pairs for pydantic's models_json_schema
MODELS = [(InferRequestIn, "validation"),
          *((m, "serialization") for m in (InferResponseOut, ModelMetadataOut, ServerMetadataOut, LiveOut, ReadyOut,
                                           OipErrorOut))]

REASONS = {400: "Malformed body, or the server refused the tensors or parameters (INVALID_ARGUMENT)",
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
        "description": "The model's name (the server's --model-name, `sentiment` by default)."}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "The model's version (the server's --model-version)."}


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
    }
