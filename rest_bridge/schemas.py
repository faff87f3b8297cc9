"""Request and response shapes of the bridge, as pydantic models; /openapi.json is built from them."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from clients.types import TRUNCATION

def _integral(value):
    """JSON has one number type: 2.0 is the integer 2, as JSON Schema's "integer" says; 2.5 (or "2") is not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(low: int, high: int):
    """An integer from ``low`` to ``high``, in JSON's sense (2.0 counts). The bounds are those of the protobuf
    field the value travels in, or tighter: beyond them a clear 422, never a failed conversion."""
    return Annotated[StrictInt, Ge(low), Le(high), BeforeValidator(_integral)]


Int64 = json_int(-(2**63), 2**63 - 1)

# "At least one character that is not whitespace": the server refuses blank texts, and the schema says so.
# The whitespace is Python's (str.isspace, what the server strips), spelled out so that the pattern means
# the same to every JSON Schema validator and generator (ECMA's \s differs: it has U+FEFF, not U+001C-1F).
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


MODEL_DESCRIPTION = ("Which of the server's models answers (GET /v1/models lists them; default: the server's "
                     "default model). A model the server has not loaded: 404.")
VERSION_DESCRIPTION = "Which version of the model answers (default: the version its policy serves, the latest)."


class PredictIn(BaseModel):
    """Give ``text`` (one prediction, the seed's shape) or ``texts`` (a list of predictions)."""

    # "exactly one of text or texts", said in the schema too, so that validators and generated clients
    # refuse what the bridge refuses ({} or both); text_pair goes with text, text_pairs with texts
    model_config = ConfigDict(extra="ignore", json_schema_extra={"oneOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}, "text_pairs": {"type": "null"}}},
        {"required": ["texts"], "properties": {"texts": {"type": "array"}, "text_pair": {"type": "null"}}},
    ]})

    # the constraints the server checks, in the schema only (the server's error stays the one answer)
    text: StrictStr | None = Field(None, description="One text to classify (not blank).",
                                   json_schema_extra={"pattern": NOT_BLANK})
    texts: list[StrictStr] | None = Field(None, description="Several texts (none blank), answered in order.",
                                          json_schema_extra={"minItems": 1, "items": {"pattern": NOT_BLANK}})
    text_pair: StrictStr | None = Field(
        None, description="With `text`: a second segment read with it (an aspect, a hypothesis, a query: for models "
        "that read two segments, as TEI's PredictPair). Encoded with the tokenizer's pair handling, cut longest-first "
        "past the model's limit; not with truncation=chunk. Blank: 400.", json_schema_extra={"pattern": NOT_BLANK})
    text_pairs: list[StrictStr] | None = Field(
        None, description="With `texts`: one second segment per text, in order (none blank; another count: 400).",
        json_schema_extra={"items": {"pattern": NOT_BLANK}})
    truncation: Literal[tuple(TRUNCATION)] | None = Field(
        None, description="Texts over the model's token limit: cut them (and say so), refuse with 400, or read them "
        "whole in overlapping windows and combine the windows' probabilities (token-weighted mean). Default: the "
        "server's --long-text (truncate unless changed).")
    return_logits: StrictBool = Field(False, description="Also return raw logits in class order.")
    return_windows: StrictBool = Field(False, description="With truncation=chunk: also return each window's prediction.")
    threshold: StrictFloat | None = Field(None, ge=0.0, le=1.0, description="Multi-label models: predict every label whose "
                                    "sigmoid is at or above this (default 0.5).")
    model: StrictStr | None = Field(None, description=MODEL_DESCRIPTION)
    model_version: StrictStr | None = Field(None, description=VERSION_DESCRIPTION)
    # a negative k is the server's to refuse (400 naming options.top_k); the schema says what it takes
    top_k: json_int(-(2**31), 2**31 - 1) | None = Field(
        None, description="Also return the best top_k labels, best first, in `top` (0 or absent: no `top`; more than "
        "the model's labels: every label, as Triton's classification extension clamps its count). Negative: 400.",
        json_schema_extra={"minimum": 0})
    raw_scores: StrictBool = Field(False, description="TEI's raw_scores: `scores` (and `top`) carry the raw logits "
                                   "instead of probabilities, and `top` ranks by them.")

    @model_validator(mode="after")
    def exactly_one_input(self) -> "PredictIn":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        if self.text is not None and self.text_pairs is not None:
            raise ValueError("'text_pairs' goes with 'texts'; with 'text', give one 'text_pair'")
        if self.texts is not None and self.text_pair is not None:
            raise ValueError("'text_pair' goes with 'text'; with 'texts', give 'text_pairs' (one per text)")
        return self


class TopLabelOut(BaseModel):
    label: str
    score: float = Field(description="The label's value in `scores`: a probability, or its logit with raw_scores.")
    predicted_class: int = Field(description="The label's class index.")


class PredictionBase(BaseModel):
    predicted_class: int = Field(description="Class index (the seed service's field): the most probable label "
                                 "(multi-label: the highest sigmoid; regression: always 0).")
    label: str = Field(description="Class name from the model's id2label (the label of predicted_class).")
    scores: dict[str, float] = Field(description="Probability of every label: softmax (single-label models, sums to 1) "
                                     "or a sigmoid per label (multi-label models); with raw_scores the raw logits "
                                     "instead; empty for regression models.")
    num_tokens: int = Field(description="Tokens the model saw, special tokens included (chunked: over all windows).")
    truncated: bool = Field(description="True when the text was cut to the model's limit.")
    logits: list[float] | None = Field(None, description="Raw logits, only with return_logits (chunked: their "
                                       "token-weighted mean over the windows).")
    predicted_labels: list[str] | None = Field(None, description="Multi-label models only: every label at or above "
                                               "the threshold.")
    score: float | None = Field(None, description="Regression models only: the raw output value.")
    top: list[TopLabelOut] | None = Field(None, description="With top_k: the best labels by their `scores` value, best "
                                          "first (equal values: class order); empty for regression models.")


class WindowPredictionOut(PredictionBase):
    start: int = Field(description="Character offset where the window's text starts in the original text.")
    end: int = Field(description="Character offset where it ends: text[start:end] is what the window read.")


class PredictionOut(PredictionBase):
    windows: int | None = Field(None, description="With truncation=chunk: how many windows were read.")
    window_predictions: list[WindowPredictionOut] | None = Field(
        None, description="With truncation=chunk and return_windows: each window's own prediction, in text order.")


class PredictBatchOut(BaseModel):
    predictions: list[PredictionOut]


class ExplainIn(BaseModel):
    """One text to explain: each word's attribution to a label, by Integrated Gradients."""

    model_config = ConfigDict(extra="ignore")

    text: StrictStr = Field(description="The text to explain (not blank).", json_schema_extra={"pattern": NOT_BLANK})
    text_pair: StrictStr | None = Field(None, description="A second segment read with the text (models that read two); "
                                        "its words are explained too (`segment: 1`). Blank: 400.",
                                        json_schema_extra={"pattern": NOT_BLANK})
    label: StrictStr | None = Field(None, description="The label to explain (default: the predicted one).")
    truncation: Literal[tuple(t for t in TRUNCATION if t != "chunk")] | None = Field(
        None, description="Texts over the model's token limit: explain their first tokens (default) or refuse with 400.")
    steps: json_int(1, 2**31 - 1) | None = Field(None, description="Integration steps (default: the server's; more steps, "
                                    "smaller convergence_delta, slower).")
    model: StrictStr | None = Field(None, description=MODEL_DESCRIPTION)
    model_version: StrictStr | None = Field(None, description=VERSION_DESCRIPTION)


class WordOut(BaseModel):
    word: str = Field(description="The word as written: text[start:end] (text_pair[start:end] in segment 1).")
    start: int = Field(description="Character offset of the word in its segment (the text, or the text_pair).")
    end: int
    attribution: float = Field(description="How much the word pushed the target label's logit: > 0 towards it.")
    segment: int | None = Field(None, description="With a text_pair only: 0 for a word of the text, 1 for a word of "
                                "the pair.")


class ExplainOut(BaseModel):
    label: str = Field(description="The predicted label.")
    target: str = Field(description="The label explained.")
    scores: dict[str, float] = Field(description="Probability of every label (empty for regression models).")
    words: list[WordOut] = Field(description="Every word of the text (word pieces merged), in text order.")
    convergence_delta: float = Field(description="Sum of the attributions minus the target logit's difference between "
                                     "the text and an all-padding baseline: near 0 when the steps were enough.")
    num_tokens: int
    truncated: bool


class ErrorDetail(BaseModel):
    code: str = Field(description="gRPC status name (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) or HTTP reason.")
    message: str
    field: str | None = None
    details: list | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class ModelStateOut(BaseModel):
    name: str
    version: str
    state: str = Field(description="READY, or UNLOADING while the calls it admitted finish.")


class StatusOut(BaseModel):
    status: str
    models: list[ModelStateOut] | None = Field(None, description="/readyz: every model version the server has "
                                               "loaded, with its state (absent when the backend does not answer).")


class ModelVersionOut(BaseModel):
    """One loaded model version (GET /v1/models)."""

    name: str = Field(description="What requests call the model (`model`).")
    version: str = Field(description="This version (`model_version`).")
    state: str = Field(description="READY, or UNLOADING while the calls it admitted finish.")
    unversioned: bool = Field(description="It answers the model's requests that name no version.")
    info: dict = Field(description="The version's facts, as GET /v1/model answers them.")


class ModelCardOut(BaseModel):
    """One served model as OpenAI's and vLLM's model list give it (vLLM's ``ModelCard``)."""

    id: str = Field(description="The model's name: what `model` names in a request.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time of the answer (as vLLM gives it).")
    owned_by: Literal["sentiment-service"] = "sentiment-service"
    root: str = Field(description="Where the server loaded the version that answers unversioned requests from.")
    parent: None = None
    max_model_len: int = Field(description="The model's maximum input tokens, special tokens included.")
    permission: list = Field(default_factory=list, description="Always empty.")


class ModelsOut(BaseModel):
    models: list[ModelVersionOut] = Field(description="Every loaded version, the default model's first.")
    object: Literal["list"] = Field("list", description="OpenAI's and vLLM's model list: `object` and `data`.")
    data: list[ModelCardOut] = Field(description="One entry per served model, the default model first.")


class JobError(BaseModel):
    code: str = Field(description="gRPC status name of what stopped the job (UNAVAILABLE, ...), or ABORTED.")
    message: str


class JobPreviewRow(BaseModel):
    text: str | None = Field(description="The row's text, cut to 200 characters.")
    pair: str | None = Field(None, description="The row's text pair, cut to 200 characters (null without a "
                             "pair_field, or where the row has none).")
    label: str | None = Field(description="Predicted label (null when the row could not be scored).")
    score: float | None = Field(description="Probability of that label.")
    error: str | None = Field(description="Why the row could not be scored (an empty text, one too long, ...).")


class JobStatusOut(BaseModel):
    """A file-scoring job: progress while it runs, label counts and the first rows as they are scored."""

    id: str
    state: Literal["queued", "running", "done", "failed"]
    filename: str
    format: Literal["csv", "jsonl"]
    columns: list[str] = Field(description="The file's columns, in order; the CSV result keeps them first.")
    text_field: str
    pair_field: str | None = Field(None, description="The column read as each row's text pair (null: single texts).")
    truncation: str | None = Field(description="What the job asked for texts over the model's limit (null: the server's "
                                   "--long-text).")
    model: str | None = Field(None, description="The model that scores the file (null: the server's default model).")
    model_version: str | None = Field(None, description="The version asked for (null: the one its policy serves).")
    total: int = Field(description="Rows in the file.")
    done: int = Field(description="Rows scored so far (with or without an error).")
    errors: int = Field(description="Rows that could not be scored.")
    labels: dict[str, int] = Field(description="Rows per predicted label so far, every label of the model listed.")
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    error: JobError | None = Field(description="Why a failed job stopped.")
    preview: list[JobPreviewRow] = Field(description="The first 20 rows scored.")
