"""The OpenAPI 3.1 document of the bridge, generated from the pydantic models it validates with."""

from __future__ import annotations

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from clients.types import ModelInfo
from rest_bridge import oip_openapi
from rest_bridge.schemas import ErrorOut, ExplainIn, ExplainOut, PredictBatchOut, PredictIn, PredictionOut, StatusOut

REF = "#/components/schemas/{model}"


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _errors(*codes: int) -> dict:
    reasons = {400: "Malformed JSON, or the service refused the input (INVALID_ARGUMENT)",
               401: "Missing or wrong bearer token", 413: "Body larger than the limit",
               415: "Content-Type is not application/json", 422: "JSON of the wrong shape or types",
               429: "The service is overloaded (see Retry-After)", 503: "The backend is unavailable",
               504: "The backend did not answer within the deadline"}
    return {str(c): {"description": reasons[c], "content": _json("ErrorOut")} for c in codes}


def build_openapi(version: str) -> dict:
    _, schema = models_json_schema(
        [(m, "validation" if m in (PredictIn, ExplainIn) else "serialization")
         for m in (PredictIn, PredictionOut, PredictBatchOut, ExplainIn, ExplainOut, ErrorOut, StatusOut)]
        + oip_openapi.MODELS,
        ref_template=REF,
    )
    # /v1/model answers the client's ModelInfo as it is: its schema comes from that dataclass
    model_info = TypeAdapter(ModelInfo).json_schema(ref_template=REF)
    schema["$defs"].update(model_info.pop("$defs", {}))  # what it refers to (BatchCost) goes to components too
    schema["$defs"]["ModelInfo"] = model_info
    predict_responses = {
        "200": {"description": "One prediction for `text`, or `{\"predictions\": [...]}` for `texts`",
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/PredictionOut"},
                    {"$ref": "#/components/schemas/PredictBatchOut"}]}}}},
        **_errors(400, 401, 413, 415, 422, 429, 503, 504),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sentiment REST bridge", "version": version,
                 "description": "JSON over HTTP in front of the sentiment.v1 gRPC service, and the Open "
                                "Inference Protocol (KServe v2) REST API under /v2."},
        "paths": {
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
                              **_errors(400, 401, 413, 415, 422, 429, 503, 504)},
            }},
            "/v1/model": {"get": {"summary": "The served model and its settings",
                                  "responses": {"200": {"description": "Model info", "content": _json("ModelInfo")},
                                                **_errors(503, 504)}}},
            "/healthz": {"get": {"summary": "The bridge process is alive",
                                 "responses": {"200": {"description": "Alive", "content": _json("StatusOut")}}}},
            "/readyz": {"get": {"summary": "The gRPC backend reports SERVING",
                                "responses": {"200": {"description": "Ready", "content": _json("StatusOut")},
                                              "503": {"description": "Not ready", "content": _json("StatusOut")}}}},
            **oip_openapi.paths(),
        },
        "components": {"schemas": schema["$defs"]},
    }
