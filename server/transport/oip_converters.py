"""Open Inference Protocol messages ⇄ the inference core's plain types (texts, options, predictions).

The model takes one input, ``text`` (BYTES, shape [n]), and an optional second one, ``text_pair`` (BYTES, shape
[n]: each text's second segment, for models that read two; absent: no pairs; an empty element is refused), and
answers ``label`` (BYTES [n]), ``scores``
(FP32 [n, num_labels]), ``class_id`` (INT64 [n]) and, when asked, ``logits`` (FP32 [n, num_labels]).
Request parameters carry the options of ``sentiment.v1``: ``truncation`` ("truncate", "reject" or "chunk";
absent: the server's ``--long-text``, as for every protocol), ``return_logits`` (bool) and ``raw_scores`` (bool:
``scores`` carries the logits, as TEI's). Triton's classification extension: a requested ``scores`` or ``logits``
output with the parameter ``classification`` (int64 k > 0) comes back as BYTES [n, min(k, num_labels)] of
"<value>:<index>:<label>" strings, best first. Every problem is an ``InvalidInput`` naming the tensor or
parameter."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from sentiment.oip import grpc_predict_v2_pb2 as oip
from server.core.types import TRUNCATIONS, PredictOptions, Prediction, ranked
from server.errors import InvalidInput

INPUT = "text"
PAIR_INPUT = "text_pair"  # optional: each text's second segment (server.core.types.check_pairs)
# output name -> (datatype, whether it has one column per label)
OUTPUTS = {"label": ("BYTES", False), "scores": ("FP32", True), "class_id": ("INT64", False),
           "logits": ("FP32", True)}
DEFAULT_OUTPUTS = ("label", "scores", "class_id")
CLASSIFICATION = "classification"  # Triton's classification extension: an output parameter, the count wanted


@dataclass(frozen=True)
class InferCall:
    """What one ModelInfer request asks of the core, and how to answer it."""

    texts: list[str]
    pairs: list[str] | None  # the text_pair input's elements, one per text; None when it was not sent
    options: PredictOptions
    outputs: tuple[str, ...]
    raw: bool  # the request sent raw_input_contents, so the response uses raw_output_contents
    classifications: dict[str, int] = field(default_factory=dict)  # output -> its top k, as classification strings


def model_metadata(name: str, versions: list[str], num_labels: int, platform: str) -> oip.ModelMetadataResponse:
    """``versions``: the model's loaded versions (or the one asked for); ``platform``: the engine that runs the
    model (torch, onnxruntime, or both, by batch size)."""
    tensor = oip.ModelMetadataResponse.TensorMetadata
    return oip.ModelMetadataResponse(
        name=name, versions=versions, platform=platform,
        # text_pair may be left out (OIP's metadata has no optional flag: the README says so)
        inputs=[tensor(name=INPUT, datatype="BYTES", shape=[-1]), tensor(name=PAIR_INPUT, datatype="BYTES", shape=[-1])],
        outputs=[tensor(name=output, datatype=datatype, shape=[-1, num_labels] if per_label else [-1])
                 for output, (datatype, per_label) in OUTPUTS.items()],
    )


def _parameter(parameters, name: str, kind: str, prefix: str = ""):
    """The value of parameter ``name`` when set, checking it is of ``kind`` (a field of InferParameter);
    ``prefix`` names where the parameters are (an output's: ``outputs.scores.``)."""
    if name not in parameters:
        return None
    value = parameters[name]
    if value.WhichOneof("parameter_choice") != kind:
        wanted = {"bool_param": "a bool", "string_param": "a string", "int64_param": "an int64"}[kind]
        raise InvalidInput(f"parameter '{name}' must be {wanted}", field=f"{prefix}parameters.{name}")
    return getattr(value, kind)


def options(parameters, outputs: tuple[str, ...]) -> PredictOptions:
    """Unknown parameters are ignored: clients add their own (tritonclient's priority, MLServer's content_type).
    No ``truncation``: None, which the core resolves to the server's ``--long-text`` as for sentiment.v1."""
    truncation = _parameter(parameters, "truncation", "string_param") or None
    if truncation is not None and truncation not in TRUNCATIONS:
        raise InvalidInput(f"parameter 'truncation' must be one of {sorted(TRUNCATIONS)}, not {truncation!r}",
                           field="parameters.truncation")
    return_logits = bool(_parameter(parameters, "return_logits", "bool_param")) or "logits" in outputs
    raw_scores = bool(_parameter(parameters, "raw_scores", "bool_param"))
    return PredictOptions(truncation=truncation, return_logits=return_logits, raw_scores=raw_scores)


def classifications(requested) -> dict[str, int]:
    """The outputs asked for as Triton's classification strings, and how many classes each: the parameter is an
    int64 above 0 (Triton's rule); a count past the model's labels gives them all (Triton clamps it too). Only
    the per-label outputs rank: ``label`` and ``class_id`` have nothing to rank, and are refused."""
    counts = {}
    for output in requested:
        count = _parameter(output.parameters, CLASSIFICATION, "int64_param", prefix=f"outputs.{output.name}.")
        if count is None:
            continue
        where = f"outputs.{output.name}.parameters.{CLASSIFICATION}"
        if count <= 0:
            raise InvalidInput(f"parameter '{CLASSIFICATION}' of output '{output.name}' must be 1 or more, not {count}",
                               field=where)
        if not OUTPUTS[output.name][1]:
            raise InvalidInput(f"output '{output.name}' has one value per text: '{CLASSIFICATION}' ranks the labels of "
                               "'scores' or 'logits'", field=where)
        counts[output.name] = count
    return counts


def repository_parameters(parameters, allowed: tuple[str, ...]) -> None:
    """A load or unload request's parameters: only ``allowed`` ones (tritonclient's ``unload_dependents``, a
    bool) are taken; a ``config`` or ``file:`` override is refused (publish a version folder instead)."""
    for name, value in parameters.items():
        if name not in allowed:
            raise InvalidInput(f"parameter '{name}' is not supported: the server loads what the repository's folders "
                               "hold (publish a version as a numbered folder)", field=f"parameters.{name}")
        if value.WhichOneof("parameter_choice") != "bool_param":
            raise InvalidInput(f"parameter '{name}' must be a bool", field=f"parameters.{name}")


def split_bytes_tensor(raw: bytes, name: str) -> list[bytes]:
    """BYTES elements of a raw tensor: each a 4-byte little-endian length, then that many bytes."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"raw contents of input '{name}' end inside an element's length", field=name)
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidInput(f"raw contents of input '{name}' are shorter than their element lengths say",
                               field=name)
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


def join_bytes_tensor(elements: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def _texts(tensor: oip.ModelInferRequest.InferInputTensor, raw: bytes | None) -> list[str]:
    name = tensor.name
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input '{name}' has datatype {tensor.datatype or '(none)'}; it must be BYTES", field=name)
    if len(tensor.shape) != 1 or tensor.shape[0] < 0:
        raise InvalidInput(f"input '{name}' has shape {list(tensor.shape)}; it must be [n], one dimension: the "
                           "number of texts", field=name)
    if raw is not None:
        elements = split_bytes_tensor(raw, name)
    else:
        contents = tensor.contents
        if any(contents.ListFields()) and not contents.bytes_contents:
            raise InvalidInput(f"input '{name}' holds its data outside bytes_contents; BYTES data goes there",
                               field=name)
        elements = list(contents.bytes_contents)
    if len(elements) != tensor.shape[0]:
        raise InvalidInput(f"input '{name}' has shape [{tensor.shape[0]}] but {len(elements)} elements", field=name)
    texts = []
    for index, element in enumerate(elements):
        try:
            texts.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"element {index} of input '{name}' is not UTF-8 text", field=f"{name}[{index}]") from None
    return texts


def parse_infer_request(request: oip.ModelInferRequest) -> InferCall:
    raw = bool(request.raw_input_contents)
    if raw and len(request.raw_input_contents) != len(request.inputs):
        raise InvalidInput(f"{len(request.raw_input_contents)} raw_input_contents for {len(request.inputs)} inputs; "
                           "give one per input", field="raw_input_contents")
    if raw and any(tensor.HasField("contents") for tensor in request.inputs):
        raise InvalidInput("an input has contents while the request uses raw_input_contents; use one or the other",
                           field="raw_input_contents")
    given: dict[str, int] = {}
    for index, tensor in enumerate(request.inputs):
        if tensor.name not in (INPUT, PAIR_INPUT):
            raise InvalidInput(f"unknown input '{tensor.name}'; the model takes '{INPUT}' (BYTES, shape [n]) and "
                               f"optionally '{PAIR_INPUT}' (BYTES, shape [n])", field=tensor.name or "inputs")
        if tensor.name in given:
            raise InvalidInput(f"input '{tensor.name}' is given more than once", field=tensor.name)
        given[tensor.name] = index
    if INPUT not in given:
        raise InvalidInput(f"input '{INPUT}' (BYTES, shape [n]) is missing", field=INPUT)

    def read(name: str) -> list[str]:
        index = given[name]
        return _texts(request.inputs[index], request.raw_input_contents[index] if raw else None)

    texts = read(INPUT)
    pairs = None
    if PAIR_INPUT in given:
        pairs = read(PAIR_INPUT)
        if len(pairs) != len(texts):
            raise InvalidInput(f"input '{PAIR_INPUT}' has {len(pairs)} elements for {len(texts)} texts: it must have "
                               f"the shape of '{INPUT}', one second segment per text", field=PAIR_INPUT)
        for index, pair in enumerate(pairs):  # sent but blank: named here, by the input (the core's rule is the same)
            if not pair.strip():
                raise InvalidInput(f"element {index} of input '{PAIR_INPUT}' is empty: every text of a call with "
                                   f"'{PAIR_INPUT}' needs a second segment (leave the input out for none)",
                                   field=f"{PAIR_INPUT}[{index}]")
    outputs = tuple(output.name for output in request.outputs) or DEFAULT_OUTPUTS
    for name in outputs:
        if name not in OUTPUTS:
            raise InvalidInput(f"unknown output '{name}'; the model answers {', '.join(OUTPUTS)}", field=name)
    call_options = options(request.parameters, outputs)
    if not request.outputs and call_options.return_logits:
        outputs += ("logits",)
    return InferCall(texts=texts, pairs=pairs, options=call_options, outputs=outputs, raw=raw,
                     classifications=classifications(request.outputs))


def _columns(name: str, predictions: list[Prediction], labels: list[str]) -> list:
    """The output's elements, flattened row-major."""
    if name == "label":
        return [p.label.encode() for p in predictions]
    if name == "class_id":
        return [p.class_id for p in predictions]
    if name == "scores":
        return [p.scores[label] for p in predictions for label in labels]
    return [value for p in predictions for value in p.logits]


def _classified(name: str, count: int, predictions: list[Prediction], labels: list[str]) -> tuple[list[bytes], int]:
    """Each text's best ``count`` labels of output ``name`` as Triton writes them, "<value>:<index>:<label>"
    (the value as C++'s std::to_string prints a float), flattened row-major; and the count given."""
    count = min(count, len(labels))
    elements = []
    for prediction in predictions:
        row = [prediction.scores[label] for label in labels] if name == "scores" else prediction.logits
        # the value as the FP32 output holds it
        elements.extend(f"{float(np.float32(t.score)):f}:{t.class_id}:{t.label}".encode()
                        for t in ranked(labels, row, count))
    return elements, count


def infer_response(request: oip.ModelInferRequest, call: InferCall, predictions: list[Prediction],
                   labels: list[str], version: str) -> oip.ModelInferResponse:
    """Outputs in the order asked for; ``scores`` and ``logits`` name their columns in a ``labels`` parameter,
    or come as classification strings when the request asked (``call.classifications``)."""
    response = oip.ModelInferResponse(model_name=request.model_name, model_version=version, id=request.id)
    for name in call.outputs:
        datatype, per_label = OUTPUTS[name]
        if name in call.classifications:
            values, count = _classified(name, call.classifications[name], predictions, labels)
            tensor = response.outputs.add(name=name, datatype="BYTES", shape=[len(predictions), count])
            datatype = "BYTES"
        else:
            values = _columns(name, predictions, labels)
            tensor = response.outputs.add(name=name, datatype=datatype,
                                          shape=[len(predictions), len(labels)] if per_label else [len(predictions)])
            if per_label:
                tensor.parameters["labels"].string_param = ",".join(labels)
        if call.raw:
            response.raw_output_contents.append(
                join_bytes_tensor(values) if datatype == "BYTES"
                else np.asarray(values, dtype="<f4" if datatype == "FP32" else "<i8").tobytes())
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(values)
        elif datatype == "FP32":
            tensor.contents.fp32_contents.extend(values)
        else:
            tensor.contents.int64_contents.extend(values)
    return response
