"""The Open Inference Protocol's REST shapes (``/v2/...``), as pydantic models: the bridge validates
infer requests with them and /openapi.json documents every route from them."""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictStr

from rest_bridge.schemas import Int64

Parameters = dict[str, Union[StrictBool, Int64, StrictFloat, StrictStr]]  # int64_param, double_param, ...
# the protocol's tensor datatypes (rest_bridge.oip_json.DATATYPES maps each to its encoding)
DATATYPE_NAMES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
                  "FP64", "BYTES")


class InferInputIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(description="Input name: this model takes `text`.")
    shape: list[Int64] = Field(description="Tensor shape: `[n]` for n texts.")
    datatype: StrictStr = Field(description="Element type: `BYTES` (texts are strings) for `text`.",
                                json_schema_extra={"enum": list(DATATYPE_NAMES)})
    parameters: Parameters | None = Field(None, description="Tensor parameters; `binary_data_size` when the "
                                          "elements follow the JSON header (binary tensor extension).")
    data: list[Any] | None = Field(None, description="Elements, flat or nested, row-major.")


class InferRequestedOutputIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(description="`label`, `scores`, `class_id` or `logits`.")
    parameters: Parameters | None = Field(None, description="`binary_data: true` answers this output in binary.")


class InferRequestIn(BaseModel):
    """An inference request: request parameters carry `truncation` ("truncate" or "reject") and
    `return_logits` (bool); without `outputs`, the answer holds `label`, `scores` and `class_id`."""

    model_config = ConfigDict(extra="ignore")

    id: StrictStr | None = Field(None, description="Echoed in the response.")
    parameters: Parameters | None = Field(None, description="Request options (see above); `binary_data_output: "
                                          "true` answers every output in binary.")
    inputs: list[InferInputIn] = Field(description="The input tensors: one, `text`.")
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
