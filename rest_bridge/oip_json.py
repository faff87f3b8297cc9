"""The Open Inference Protocol's REST body (JSON tensors, and Triton's binary tensor extension) ⇄ its
gRPC messages. A transcoding, like grpc-gateway's: what the tensors must be is the server's to check.

Binary tensor extension (what ``tritonclient.http`` sends by default): the body is a JSON header of
``Inference-Header-Content-Length`` bytes followed by the tensors' bytes; an input or output with the
``binary_data_size`` parameter has its elements there, in the layout of ``raw_input_contents``."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from rest_bridge.oip_schemas import InferRequestIn
from sentiment.oip import grpc_predict_v2_pb2 as oip

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_SIZE = "binary_data_size"
# parameters of the binary extension: the bridge's business, not the server's
BINARY_PARAMETERS = {BINARY_SIZE, "binary_data", "binary_data_output"}

# datatype -> (InferTensorContents field, numpy little-endian dtype of its raw bytes)
DATATYPES = {
    "BOOL": ("bool_contents", "?"), "INT8": ("int_contents", "i1"), "INT16": ("int_contents", "<i2"),
    "INT32": ("int_contents", "<i4"), "INT64": ("int64_contents", "<i8"), "UINT8": ("uint_contents", "u1"),
    "UINT16": ("uint_contents", "<u2"), "UINT32": ("uint_contents", "<u4"), "UINT64": ("uint64_contents", "<u8"),
    "FP16": (None, "<f2"), "FP32": ("fp32_contents", "<f4"), "FP64": ("fp64_contents", "<f8"),
    "BYTES": ("bytes_contents", None),
}


INTEGER_RANGES = {f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)} | {
    f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)}


class BadTensorRequest(Exception):
    """The body cannot be transcoded: ``status`` 400 (malformed) or 422 (wrong shape or types)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass(frozen=True)
class InferRequest:
    message: oip.ModelInferRequest
    binary_outputs: dict[str, bool]  # output name -> answer it in binary
    binary_default: bool  # for outputs the request does not list


def _parameters(target, values: dict | None) -> None:
    for name, value in (values or {}).items():
        if name in BINARY_PARAMETERS:
            continue
        if isinstance(value, bool):
            target[name].bool_param = value
        elif isinstance(value, int):
            target[name].int64_param = value
        elif isinstance(value, float):
            target[name].double_param = value
        else:
            target[name].string_param = value


def _flag(parameters: dict | None, name: str, default: bool, field: str) -> bool:
    """A true/false parameter of the binary extension: anything else is refused, never read as truthy."""
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise BadTensorRequest(422, f"parameter '{name}' must be true or false, not {value!r}", field=field)
    return value


def parameters_json(parameters) -> dict:
    return {name: getattr(value, value.WhichOneof("parameter_choice")) for name, value in parameters.items()}


def _flatten(data) -> list:
    if isinstance(data, list):
        return [element for item in data for element in _flatten(item)]
    return [data]


def _typed(name: str, datatype: str, values: list) -> list:
    """JSON elements as the datatype's Python values; 422 naming the input when one does not fit."""
    def wrong(index: int, what: str):
        return BadTensorRequest(422, f"input '{name}': element {index} of {datatype} data must be {what}",
                                field=f"inputs.{name}.data")

    for index, value in enumerate(values):
        if datatype == "BYTES" and not isinstance(value, str):
            raise wrong(index, "a string")
        if datatype == "BOOL" and not isinstance(value, bool):
            raise wrong(index, "true or false")
        if datatype in INTEGER_RANGES:
            low, high = INTEGER_RANGES[datatype]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise wrong(index, f"an integer from {low} to {high}")
        if datatype.startswith("FP") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise wrong(index, "a number")
    return [value.encode() for value in values] if datatype == "BYTES" else values


def to_raw(datatype: str, values: list) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in values)
    return np.asarray(values, dtype=DATATYPES[datatype][1]).tobytes()


def from_raw(datatype: str, raw: bytes) -> list:
    if datatype == "BYTES":
        values, offset = [], 0
        while offset + 4 <= len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            values.append(raw[offset + 4 : offset + 4 + size])
            offset += 4 + size
        return values
    return np.frombuffer(raw, dtype=DATATYPES[datatype][1]).tolist()


def _split_body(body: bytes, header_length: str | None) -> tuple[InferRequestIn, bytes]:
    """The JSON header validated, and the binary data after it (``Inference-Header-Content-Length``)."""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise BadTensorRequest(400, f"{HEADER_LENGTH} must be a number of bytes") from None
        if not 0 <= split <= len(body):
            raise BadTensorRequest(400, f"{HEADER_LENGTH} is {split}, but the body has {len(body)} bytes")
        header, binary = body[:split], body[split:]
    else:
        header, binary = body, b""
    try:
        document = json.loads(header)
    except (ValueError, UnicodeDecodeError):
        raise BadTensorRequest(400, "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise BadTensorRequest(422, "the body must be a JSON object")
    try:
        return InferRequestIn.model_validate(document), binary
    except ValidationError as error:
        first = error.errors()[0]
        raise BadTensorRequest(422, first["msg"], ".".join(str(p) for p in first["loc"]) or None) from None


def _add_inputs(message: oip.ModelInferRequest, parsed: InferRequestIn, binary: bytes) -> None:
    """Each input tensor into the message: its data typed into ``contents``, or all of them into
    ``raw_input_contents`` when any input came as binary data."""
    raw_inputs, offset = [], 0
    binary_inputs = [i for i in parsed.inputs if (i.parameters or {}).get(BINARY_SIZE) is not None]
    for tensor in parsed.inputs:
        if tensor.datatype not in DATATYPES:
            raise BadTensorRequest(422, f"input '{tensor.name}': unknown datatype {tensor.datatype!r}",
                                   field=f"inputs.{tensor.name}.datatype")
        item = message.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        _parameters(item.parameters, tensor.parameters)
        size = (tensor.parameters or {}).get(BINARY_SIZE)
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise BadTensorRequest(400, f"input '{tensor.name}': {BINARY_SIZE} {size!r} does not fit the "
                                       f"{len(binary) - offset} binary bytes left in the body")
            raw_inputs.append(binary[offset : offset + size])
            offset += size
            continue
        if tensor.data is None:
            raise BadTensorRequest(422, f"input '{tensor.name}' has no data", field=f"inputs.{tensor.name}.data")
        values = _typed(tensor.name, tensor.datatype, _flatten(tensor.data))
        field = DATATYPES[tensor.datatype][0]
        if binary_inputs:
            raw_inputs.append(to_raw(tensor.datatype, values))
        elif field is None:
            raise BadTensorRequest(422, f"input '{tensor.name}': {tensor.datatype} data can only be sent binary",
                                   field=f"inputs.{tensor.name}.datatype")
        else:
            getattr(item.contents, field).extend(values)
    if offset != len(binary):
        raise BadTensorRequest(400, f"{len(binary) - offset} bytes of binary data after the last binary input")
    if binary_inputs:
        message.raw_input_contents.extend(raw_inputs)


def parse_infer_request(body: bytes, header_length: str | None, model_name: str, version: str) -> InferRequest:
    """The body of POST /v2/models/{name}/infer as a ModelInferRequest."""
    parsed, binary = _split_body(body, header_length)
    message = oip.ModelInferRequest(model_name=model_name, model_version=version, id=parsed.id or "")
    _parameters(message.parameters, parsed.parameters)
    _add_inputs(message, parsed, binary)
    binary_default = _flag(parsed.parameters, "binary_data_output", False, "parameters.binary_data_output")
    binary_outputs = {}
    for output in parsed.outputs or []:
        item = message.outputs.add(name=output.name)
        _parameters(item.parameters, output.parameters)
        binary_outputs[output.name] = _flag(output.parameters, "binary_data", binary_default,
                                            f"outputs.{output.name}.parameters.binary_data")
    return InferRequest(message, binary_outputs, binary_default)


def infer_response_body(response: oip.ModelInferResponse, request: InferRequest) -> tuple[bytes, int | None]:
    """The JSON (and binary) body of the answer, and the JSON header's length when binary data follows."""
    outputs, chunks = [], []
    for index, tensor in enumerate(response.outputs):
        if index < len(response.raw_output_contents):
            raw = response.raw_output_contents[index]
            values = None
        else:
            field = DATATYPES.get(tensor.datatype, (None,))[0]
            values = list(getattr(tensor.contents, field)) if field else []
            raw = None
        out = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        parameters = parameters_json(tensor.parameters)
        if request.binary_outputs.get(tensor.name, request.binary_default):
            raw = raw if raw is not None else to_raw(tensor.datatype, values)
            parameters[BINARY_SIZE] = len(raw)
            chunks.append(raw)
        else:
            values = values if values is not None else from_raw(tensor.datatype, raw)
            out["data"] = [v.decode("utf-8", "replace") for v in values] if tensor.datatype == "BYTES" else values
        if parameters:
            out["parameters"] = parameters
        outputs.append(out)
    document = {"model_name": response.model_name, "model_version": response.model_version, "outputs": outputs}
    if response.id:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = parameters_json(response.parameters)
    header = json.dumps(document, separators=(",", ":")).encode()
    return (header + b"".join(chunks), len(header)) if chunks else (header, None)


def model_metadata_json(metadata: oip.ModelMetadataResponse) -> dict:
    def tensors(items):
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

    return {"name": metadata.name, "versions": list(metadata.versions), "platform": metadata.platform,
            "inputs": tensors(metadata.inputs), "outputs": tensors(metadata.outputs)}


def repository_body(body: bytes, schema):
    """A repository call's JSON body, validated (an empty body is ``{}``: tritonclient sends none)."""
    if not body.strip():
        return schema()
    try:
        parsed = json.loads(body)
    except ValueError:
        raise BadTensorRequest(400, "the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadTensorRequest(422, "the body must be a JSON object")
    try:
        return schema.model_validate(parsed)
    except ValidationError as error:
        first = error.errors()[0]
        raise BadTensorRequest(422, first["msg"], ".".join(str(p) for p in first["loc"]) or None) from None
