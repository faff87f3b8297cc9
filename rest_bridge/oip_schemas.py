"""The Open Inference Protocol's REST shapes (``/v2/...``), as pydantic models: the bridge validates
infer requests with them and /openapi.json documents every route from them."""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictStr

from clients.types import TRUNCATION
from rest_bridge.schemas import Int64, json_int

Parameters = dict[str, Union[StrictBool, Int64, StrictFloat, StrictStr]]  # int64_param, double_param, ...
# What this model's infer endpoint takes and answers (its /v2/models/<name> metadata says the same; the
# server checks it, tests/test_oip.py keeps the two in step): the schema states it, so schema-driven clients
# and fuzzers know a request the server will refuse.
INPUT_NAMES, INPUT_DATATYPE = ("text", "text_pair"), "BYTES"  # text_pair: optional, each text's second segment
OUTPUT_NAMES = ("label", "scores", "class_id", "logits")
BOOLEAN = {"type": "boolean"}


class InferInputIn(BaseModel):
    # data, or the binary extension's size of the bytes that follow the JSON
    model_config = ConfigDict(extra="ignore", json_schema_extra={"anyOf": [
        {"required": ["data"], "properties": {"data": {"type": "array"}}},
        {"required": ["parameters"], "properties": {"parameters": {"type": "object", "required": ["binary_data_size"]}}},
    ]})

    name: StrictStr = Field(description="Input name: this model takes `text` and, optionally, `text_pair` (each "
                            "text's second segment, same shape; for models that read two segments).",
                            json_schema_extra={"enum": list(INPUT_NAMES)})
    shape: list[json_int(0, 2**63 - 1)] = Field(description="Tensor shape: `[n]` for n texts.",
                                                json_schema_extra={"minItems": 1, "maxItems": 1})
    datatype: StrictStr = Field(description="Element type: `BYTES` (texts are strings) for `text` and `text_pair`.",
                                json_schema_extra={"enum": [INPUT_DATATYPE]})
    parameters: Parameters | None = Field(None, description="Tensor parameters; `binary_data_size` when the "
                                          "elements follow the JSON header (binary tensor extension).",
                                          json_schema_extra={"properties": {
                                              "binary_data_size": {"type": "integer", "minimum": 0}}})
    data: list[Any] | None = Field(None, description="Elements, flat or nested, row-major: the texts.",
                                   json_schema_extra={"items": {"type": ["string", "array"]}})


class InferRequestedOutputIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(description="`label`, `scores`, `class_id` or `logits`.",
                            json_schema_extra={"enum": list(OUTPUT_NAMES)})
    parameters: Parameters | None = Field(None, description="`binary_data: true` answers this output in binary; "
                                          "`classification: k` (Triton's classification extension; `scores` or "
                                          "`logits`) answers it as BYTES [n, min(k, labels)] of "
                                          "\"<value>:<index>:<label>\" strings, best first.",
                                          json_schema_extra={"properties": {"binary_data": BOOLEAN, "classification": {
                                              "type": "integer", "minimum": 1}}})


class InferRequestIn(BaseModel):
    """An inference request: request parameters carry `truncation` ("truncate" or "reject"),
    `return_logits` (bool) and `raw_scores` (bool: `scores` carries the logits, as TEI's); without `outputs`, the
    answer holds `label`, `scores` and `class_id`."""

    model_config = ConfigDict(extra="ignore")

    id: StrictStr | None = Field(None, description="Echoed in the response.")
    parameters: Parameters | None = Field(None, description="Request options (see above); `binary_data_output: "
                                          "true` answers every output in binary.", json_schema_extra={"properties": {
                                              "truncation": {"enum": list(TRUNCATION)},
                                              "return_logits": BOOLEAN, "raw_scores": BOOLEAN,
                                              "binary_data_output": BOOLEAN}})
    inputs: list[InferInputIn] = Field(description="The input tensors: `text`, and optionally `text_pair` (one "
                                       "non-blank second segment per text).",
                                       json_schema_extra={"minItems": 1, "maxItems": 2, "uniqueItems": True,
                                                          "contains": {"properties": {"name": {"const": "text"}}}})
    outputs: list[InferRequestedOutputIn] | None = Field(None, description="The outputs wanted, in this order.")


class InferOutputOut(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(None, description="`labels`: the column order of `scores` and `logits` "
                                          "(comma-separated); `binary_data_size` for a binary output.")
    data: list[Any] | None = Field(None, description="Elements, flattened row-major (absent when binary).")


class InferResponseOut(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[InferOutputOut]


class TensorMetadataOut(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 is a dimension of any size.")


class ModelMetadataOut(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadataOut]
    outputs: list[TensorMetadataOut]


class ServerMetadataOut(BaseModel):
    name: str
    version: str
    extensions: list[str]


class LiveOut(BaseModel):
    live: bool


class ReadyOut(BaseModel):
    ready: bool


class OipErrorOut(BaseModel):
    """The protocol's error body, with the gRPC status name beside the message."""

    error: str = Field(description="What went wrong.")
    code: str | None = Field(None, description="gRPC status name (INVALID_ARGUMENT, NOT_FOUND, ...) or HTTP reason.")
    field: str | None = Field(None, description="The tensor or parameter at fault, when there is one.")


# -- Triton's model repository extension (POST /v2/repository/...) ------------------------------------------------

RepositoryParameters = dict[str, Union[StrictBool, Int64, StrictStr]]


class RepositoryIndexIn(BaseModel):
    """The body of POST /v2/repository/index (optional: tritonclient sends none)."""

    model_config = ConfigDict(extra="ignore")

    ready: StrictBool = Field(False, description="Only the model versions that are ready.")


class RepositoryModelIn(BaseModel):
    """The body of a load or unload (optional)."""

    model_config = ConfigDict(extra="ignore")

    parameters: RepositoryParameters | None = Field(
        None, description="Load: none are supported (`config` and `file:` overrides answer 400: publish a version "
        "folder instead). Unload: `unload_dependents` (true or false; a model here has no dependents).")


class RepositoryIndexEntryOut(BaseModel):
    name: str
    version: str
    state: str = Field(description="READY, LOADING, UNLOADING or UNAVAILABLE.")
    reason: str = Field(description="Why a version is UNAVAILABLE (its load failed, it was unloaded, its policy "
                        "does not select it).")


class EmptyOut(BaseModel):
    """A load or unload that succeeded."""
