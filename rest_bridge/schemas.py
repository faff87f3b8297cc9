"""Request and response shapes of the bridge, as pydantic models; /openapi.json is built from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator


class PredictIn(BaseModel):
    """Give ``text`` (one prediction, the seed's shape) or ``texts`` (a list of predictions)."""

    model_config = ConfigDict(extra="ignore")

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
