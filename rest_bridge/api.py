"""The bridge's own routes: ``POST /predict`` (the seed's contract and its extensions), ``POST /explain``,
``GET /v1/model``, ``GET /v1/models`` (also in OpenAI's and vLLM's list shape), health, readiness, metrics and
the OpenAPI document. Each converts JSON to a client call through the shared ``Backend`` and back."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ValidationError

from clients.errors import SentimentError
from clients.types import ModelVersion, PredictOptions, is_pair
from rest_bridge.backend import Backend
from rest_bridge.errors import HTTP_CODE_NAMES, error_response
from rest_bridge.openapi import build_openapi
from rest_bridge.schemas import ExplainIn, PredictIn
from sentiment.common import __version__


def parse_json(schema: type[BaseModel], invalid: int = 422):
    """The body validated against ``schema``, or the error response (415, 400, or ``invalid`` for JSON of the
    wrong shape: 422, or 400 where the protocol spoken says so, as vLLM's) to send instead."""
    if not request.is_json:
        return None, error_response(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        return None, error_response(400, "BAD_REQUEST", "the body is not valid JSON")
    if not isinstance(body, dict):
        return None, error_response(invalid, HTTP_CODE_NAMES[invalid], "the body must be a JSON object")
    try:
        return schema.model_validate(body), None
    except ValidationError as error:
        problems = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in error.errors()]
        first = problems[0]
        return None, error_response(invalid, HTTP_CODE_NAMES[invalid], first["message"], first["field"], problems)


# pydantic's names for the branches of a union and its validators, not fields a caller sent
_BRANCH_MARKERS = {"str", "int", "float", "bool", "list", "dict", "none", "nullable", "union", "tagged-union",
                   "function-after", "function-before", "function-wrap", "function-plain", "json-or-python"}


def field_path(loc: tuple) -> str | None:
    """A pydantic error location as the caller's field: ``("input", "list[str]", 2)`` is ``input[2]`` (the union
    branch it was tried against is pydantic's, not the caller's), ``("texts", 0)`` is ``texts[0]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not (set(part) & set("[](){}") or part in _BRANCH_MARKERS):
            path += f".{part}" if path else part
    return path or None


def blank_pair(text_pair: str | None, text_pairs: list[str] | None) -> Response | None:
    """A pair sent blank is refused here, naming the bridge's field: over gRPC an empty pair means none, so the
    server could not tell it from one left out (the server refuses blank pairs by the same rule)."""
    if text_pair is not None and not is_pair(text_pair):
        return error_response(400, "INVALID_ARGUMENT", "text_pair is empty: send a second segment, or leave it out",
                              "text_pair")
    for index, pair in enumerate(text_pairs or []):
        if not is_pair(pair):
            return error_response(400, "INVALID_ARGUMENT", f"the pair of text {index} is empty: every text of a call "
                                  "with text_pairs needs a second segment", f"text_pairs[{index}]")
    return None


def api_blueprint(backend: Backend) -> Blueprint:
    api = Blueprint("api", __name__)
    openapi = build_openapi(__version__)

    @api.post("/predict")
    def predict():
        parsed, refused = parse_json(PredictIn)
        if refused:
            return refused
        options = PredictOptions(parsed.truncation, parsed.return_logits, parsed.return_windows, parsed.threshold,
                                 parsed.model, parsed.model_version, parsed.top_k, parsed.raw_scores)
        blank = blank_pair(parsed.text_pair, parsed.text_pairs)
        if blank:
            return blank
        if parsed.text is not None:
            return backend.call("/predict", lambda: backend.predict_one(parsed.text, options, parsed.text_pair).to_dict())
        return backend.call("/predict", lambda: {
            "predictions": [p.to_dict() for p in backend.predict_many(parsed.texts, options, parsed.text_pairs)]})

    @api.post("/explain")
    def explain():
        parsed, refused = parse_json(ExplainIn)
        if refused:
            return refused
        blank = blank_pair(parsed.text_pair, None)
        if blank:
            return blank
        return backend.call("/explain", lambda: backend.client.explain(
            parsed.text, label=parsed.label, truncation=parsed.truncation, steps=parsed.steps, model=parsed.model,
            model_version=parsed.model_version, text_pair=parsed.text_pair, timeout=backend.remaining_seconds(),
            request_id=backend.request_id()).to_dict())

    _model_routes(api, backend)

    @api.get("/metrics")
    def metrics():
        payload, content_type = backend.metrics.exposition()
        return Response(payload, content_type=content_type)

    @api.get("/openapi.json")
    def openapi_json():
        return jsonify(openapi)

    return api


def model_cards(versions: list[ModelVersion]) -> list[dict]:
    """OpenAI's and vLLM's model list: one card per model (the default model's first), described by the version
    that answers its unversioned requests."""
    created = int(time.time())
    cards: dict[str, dict] = {}
    for version in versions:
        if version.name not in cards or version.unversioned:
            cards[version.name] = {"id": version.name, "object": "model", "created": created,
                                   "owned_by": "sentiment-service", "root": version.info.model_source, "parent": None,
                                   "max_model_len": version.info.max_input_tokens, "permission": []}
    return list(cards.values())


def _model_routes(api: Blueprint, backend: Backend) -> None:
    """The server's models: one (``?model=`` and ``&version=``, by default the default model), all of them, and
    readiness, which lists them."""

    @api.get("/v1/model")
    def model_info():
        return jsonify(backend.client.model_info(model=request.args.get("model") or None,
                                                 model_version=request.args.get("version") or None,
                                                 timeout=backend.remaining_seconds()).to_dict())

    @api.get("/v1/models")
    def models():
        versions = backend.client.list_models(timeout=backend.remaining_seconds())
        return jsonify({"models": [m.to_dict() for m in versions], "object": "list", "data": model_cards(versions)})

    @api.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @api.get("/readyz")
    def readyz():
        """The backend's health and, when it answers, every model version it serves with its state."""
        try:
            status = backend.client.health(timeout=backend.policy.ready_timeout_seconds)
        except SentimentError as error:
            status = error.code
        body = {"status": status}
        if status == "SERVING":
            try:
                body["models"] = [{"name": m.name, "version": m.version, "state": m.state}
                                  for m in backend.client.list_models(timeout=backend.policy.ready_timeout_seconds)]
            except SentimentError:
                pass  # a server without ListModels: readiness is its health alone
        return jsonify(body), 200 if status == "SERVING" else 503
