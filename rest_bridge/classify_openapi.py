"""vLLM's classification routes in the bridge's OpenAPI document."""

from __future__ import annotations

from rest_bridge.classify_schemas import ClassificationOut, ClassifyIn, VllmErrorOut

# (model, mode) pairs for pydantic's models_json_schema
MODELS = [(ClassifyIn, "validation"), (ClassificationOut, "serialization"), (VllmErrorOut, "serialization")]

REASONS = {400: "Malformed JSON, JSON of the wrong shape or types (as vLLM answers a validation error), a field set "
                "to what the server cannot do (truncate_prompt_tokens, truncation_side, add_special_tokens, priority), "
                "or the server refused the input (INVALID_ARGUMENT)",
           401: "Missing or wrong bearer token", 404: "The server serves no model of this name (NOT_FOUND)",
           413: "Body larger than the limit", 415: "Content-Type is not application/json",
           429: "The service is overloaded (see Retry-After)",
           503: "The backend is unavailable", 504: "The backend did not answer within the deadline"}


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _operation() -> dict:
    return {"post": {
        "summary": "Classify one text or several, in vLLM's classification API",
        "description": "vLLM's request and response; errors in vLLM's ErrorResponse shape. `probs` are in the "
                       "model's label order; `usage` counts the tokens the model read.",
        "requestBody": {"required": True, "content": _json("ClassifyIn")},
        "responses": {"200": {"description": "One entry per text, in input order",
                              "content": _json("ClassificationOut")},
                      **{str(c): {"description": reason, "content": _json("VllmErrorOut")}
                         for c, reason in REASONS.items()}},
    }}


def paths() -> dict:
    return {"/classify": _operation(), "/v1/classify": _operation()}
