"""vLLM's classification API: ``POST /classify`` and ``POST /v1/classify`` (vLLM serves it at both). One request is
one predict call through the shared ``Backend`` (its in-flight gate, the coalescer for one text, the deadline and
the request id), as ``/predict``; errors map to HTTP with the same table and take vLLM's ErrorResponse shape
(``rest_bridge.errors``). vLLM's fields the server cannot honour are refused with 400 naming them, never ignored."""

from __future__ import annotations

import re
import time

from flask import Blueprint, request

from clients.errors import SentimentError
from clients.types import ModelInfo, PredictOptions, Prediction
from rest_bridge.api import parse_json
from rest_bridge.backend import Backend
from rest_bridge.classify_schemas import ClassifyIn
from rest_bridge.errors import error_response

# The server's names for the request's fields, in vLLM's request
SERVER_FIELDS = {"model_name": "model", "text": "input", "texts": "input", "truncation": "truncate_prompt_tokens",
                 "options.truncation": "truncate_prompt_tokens"}


class Unsupported(Exception):
    """A field of vLLM's request set to what the server cannot do: 400 naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def classify_blueprint(backend: Backend) -> Blueprint:
    api = Blueprint("classify", __name__)

    @api.errorhandler(Unsupported)
    def unsupported(failure: Unsupported):
        return error_response(400, "INVALID_ARGUMENT", failure.message, failure.field)

    @api.post("/classify")
    @api.post("/v1/classify")
    def classify():
        parsed, refused = parse_json(ClassifyIn, invalid=400)  # vLLM answers a body of the wrong shape 400
        if refused:
            return refused
        refuse_unsupported(parsed)
        rid = backend.request_id(parsed.request_id)
        return backend.call(request.url_rule.rule, lambda: answer(backend, parsed, rid))

    return api


def refuse_unsupported(parsed: ClassifyIn) -> None:
    if parsed.truncation_side == "left":
        raise Unsupported("truncation_side", "truncation_side 'left' is not supported: the server keeps a long "
                                             "text's first tokens ('right')")
    if not parsed.add_special_tokens:
        raise Unsupported("add_special_tokens", "add_special_tokens false is not supported: the model always reads "
                                                "its special tokens")
    if parsed.priority != 0:
        raise Unsupported("priority", "priority scheduling is not enabled on this server: send priority 0")


def truncation(asked: int | None, info: ModelInfo | None) -> str | None:
    """vLLM's ``truncate_prompt_tokens`` as the server's truncation: null, the server's --long-text; -1 or the
    model's limit, cut at the limit. The server cuts at no other length."""
    if asked is None:
        return None
    if asked == -1 or asked == info.max_input_tokens:
        return "truncate"
    if asked > info.max_input_tokens:
        raise Unsupported("truncate_prompt_tokens", f"truncate_prompt_tokens ({asked}) is greater than the model's "
                                                    f"maximum input tokens ({info.max_input_tokens})")
    raise Unsupported("truncate_prompt_tokens", f"truncate_prompt_tokens {asked} is not supported: the server cuts "
                                                f"texts only at the model's limit; send -1 or {info.max_input_tokens} "
                                                "(or null for the server's default)")


def answer(backend: Backend, parsed: ClassifyIn, rid: str) -> dict:
    model = parsed.model or None
    try:
        # the model's name (for the answer) and limit (for a truncation length), when the request does not give them
        needs_info = model is None or (parsed.truncate_prompt_tokens or 0) > 0
        info = backend.client.model_info(model=model, timeout=backend.remaining_seconds()) if needs_info else None
        options = PredictOptions(truncation(parsed.truncate_prompt_tokens, info),
                                 return_logits=parsed.use_activation is False, model=model)
        if isinstance(parsed.input, str):
            predictions = [backend.predict_one(parsed.input, options)]
        else:
            predictions = backend.predict_many(parsed.input, options)
    except SentimentError as error:
        raise SentimentError(error.code, error.message, request_field(error.field, parsed.input)) from None
    return classification(predictions, model or info.name, rid, raw=parsed.use_activation is False)


def request_field(field: str | None, given: str | list[str]) -> str | None:
    """The server's field name as vLLM's request names it: ``texts[2]`` is ``input[2]`` (``input`` for one text)."""
    if field is None:
        return None
    if isinstance(given, str) and re.fullmatch(r"texts?(\[0\])?", field):
        return "input"
    indexed = re.fullmatch(r"texts\[(\d+)\]", field)
    return f"input[{indexed.group(1)}]" if indexed else SERVER_FIELDS.get(field, field)


def classification(predictions: list[Prediction], model: str, rid: str, *, raw: bool) -> dict:
    """vLLM's ClassificationResponse: ``probs`` in label order (the server's scores, or its logits when ``raw``;
    a regression model's raw value), usage counted in the tokens the model read."""
    tokens = sum(p.num_tokens for p in predictions)
    data = []
    for index, prediction in enumerate(predictions):
        probs = (prediction.logits or []) if raw else list(prediction.scores.values())
        if not probs and prediction.score is not None:  # regression: no probabilities, one value
            probs = [prediction.score]
        data.append({"index": index, "label": prediction.label, "probs": probs, "num_classes": len(probs)})
    return {"id": f"classify-{rid}", "object": "list", "created": int(time.time()), "model": model, "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
                      "prompt_tokens_details": None}}
