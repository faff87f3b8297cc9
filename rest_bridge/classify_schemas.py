"""vLLM's classification API (``POST /classify``, ``/v1/classify``), as pydantic models: the bridge validates
requests with them and /openapi.json documents the routes from them. The field names, types and defaults are
vLLM's (``vllm/entrypoints/pooling/classify/protocol.py`` and ``pooling/base/protocol.py``: the completion form
of ``ClassificationRequest``; ``ClassificationResponse``, ``UsageInfo`` and ``ErrorResponse`` from
``vllm/entrypoints/openai/engine/protocol.py``), so that a client written against vLLM runs unchanged."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from rest_bridge.schemas import NOT_BLANK, Int64, json_int

# The request id travels to the server as gRPC metadata, which carries printable ASCII only.
REQUEST_ID = r"^[\x20-\x7e]{1,256}$"


class ClassifyIn(BaseModel):
    """Classify one text or several. vLLM's own fields the bridge cannot honour are refused with 400 naming
    them (see each); fields of vLLM's other requests are ignored, as vLLM ignores fields it does not know."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = Field(None, description="Which of the server's models answers (GET /v1/models lists "
                                    "them; default: the server's default model). One it does not serve: 404.")
    input: StrictStr | list[StrictStr] = Field(
        description="One text, or several (answered in order, `index` 0, 1, ...); none blank. Token ids are not "
        "taken.", json_schema_extra={"anyOf": [{"type": "string", "pattern": NOT_BLANK},
                                               {"type": "array", "minItems": 1,
                                                "items": {"type": "string", "pattern": NOT_BLANK}}]})
    user: StrictStr | None = Field(None, description="Accepted and ignored.")
    truncate_prompt_tokens: json_int(-1, 2**63 - 1) | None = Field(
        None, description="null: the server's --long-text (truncate, reject or chunk); -1: cut at the model's limit; "
        "k: cut to k tokens, which the server does only for k = the model's limit (GET /v1/models: "
        "`max_model_len`); any other k: 400.")
    truncation_side: Literal["left", "right"] | None = Field(
        None, description="`right` (keep the first tokens) is what the server does; `left`: 400.")
    add_special_tokens: StrictBool = Field(True, description="The server always adds them; false: 400.")
    request_id: StrictStr | None = Field(
        None, description="This request's id (printable ASCII): the response's `id` is `classify-<id>`, and the "
        "server logs it. An `X-Request-Id` header wins over it, as in vLLM. Default: a new one.",
        pattern=REQUEST_ID)
    priority: Int64 = Field(0, description="The server has no priority scheduling: anything but 0 is 400, as in vLLM.")
    use_activation: StrictBool | None = Field(
        None, description="true or null: `probs` are the model's probabilities (softmax; a sigmoid per label for "
        "multi-label models); false: its raw logits.")


class ClassificationDataOut(BaseModel):
    index: int = Field(description="The text's position in `input`.")
    label: str = Field(description="The most probable label (the argmax of `probs`).")
    probs: list[float] = Field(description="One value per label, in the model's label order (GET /v1/model: "
                               "`labels`); regression models: their raw value.")
    num_classes: int = Field(description="len(probs).")


class UsageOut(BaseModel):
    prompt_tokens: int = Field(description="Tokens the model read, over every text, special tokens included.")
    total_tokens: int = Field(description="The same: classification produces no tokens.")
    completion_tokens: int = Field(0, description="Always 0.")
    prompt_tokens_details: None = None


class ClassificationOut(BaseModel):
    id: str = Field(description="`classify-` and the request's id.")
    object: Literal["list"] = "list"
    created: int = Field(description="Unix time of the answer.")
    model: str = Field(description="The model that answered.")
    data: list[ClassificationDataOut]
    usage: UsageOut


class VllmErrorInfo(BaseModel):
    message: str
    type: str = Field(description="BadRequestError, AuthenticationError, NotFoundError, UnprocessableEntityError, "
                      "RateLimitError, InternalServerError, ...")
    param: str | None = Field(None, description="The request field at fault, when there is one.")
    code: int = Field(description="The HTTP status.")


class VllmErrorOut(BaseModel):
    """vLLM's ErrorResponse."""

    error: VllmErrorInfo
