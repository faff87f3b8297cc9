"""Request and response shapes of the bridge, as pydantic models; /openapi.json is built from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator


class PredictIn(BaseModel):
    """Give ``text`` (one prediction, the seed's shape) or ``texts`` (a list of predictions)."""

    # "exactly one of text or texts", said in the schema too, so that validators and generated clients
    # refuse what the bridge refuses ({} or both)
    model_config = ConfigDict(extra="ignore", json_schema_extra={"oneOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["texts"], "properties": {"texts": {"type": "array"}}},
    ]})

    text: StrictStr | None = Field(None, description="One text to classify.")
    texts: list[StrictStr] | None = Field(None, description="Several texts, answered in order.")
    truncation: Literal["truncate", "reject"] = Field(
        "truncate", description="Texts over the model's token limit: cut them (and say so) or refuse with 400.")
    return_logits: StrictBool = Field(False, description="Also return raw logits in class order.")

    @model_validator(mode="after")
    def exactly_one_input(self) -> "PredictIn":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) or 'texts' (a list of strings)")
        return self


class PredictionOut(BaseModel):
    predicted_class: int = Field(description="Class index (the seed service's field).")
    label: str = Field(description="Class name from the model's id2label.")
    scores: dict[str, float] = Field(description="Softmax probability of every label.")
    num_tokens: int = Field(description="Tokens the model saw, special tokens included.")
    truncated: bool = Field(description="True when the text was cut to the model's limit.")
    logits: list[float] | None = Field(None, description="Raw logits, only with return_logits.")


class PredictBatchOut(BaseModel):
    predictions: list[PredictionOut]


class ErrorDetail(BaseModel):
    code: str = Field(description="gRPC status name (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) or HTTP reason.")
    message: str
    field: str | None = None
    details: list | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class StatusOut(BaseModel):
    status: str


class JobError(BaseModel):
    code: str = Field(description="gRPC status name of what stopped the job (UNAVAILABLE, ...), or ABORTED.")
    message: str


class JobPreviewRow(BaseModel):
    text: str | None = Field(description="The row's text, cut to 200 characters.")
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
    truncation: str
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
