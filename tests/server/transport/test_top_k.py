"""How many labels a caller gets and whether they are probabilities or raw scores: ``top_k`` and ``raw_scores``
of sentiment.v1 (unary, batch and stream), and Triton's classification extension with a ``raw_scores``
request parameter over the Open Inference Protocol (generated stubs, and tritonclient's ``class_count``), on
the real gRPC server over a socket."""

from __future__ import annotations

import json
import math
import subprocess

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc
from tests.support.helpers import LABELS
from tests.system.test_tritonclient import PROBE, TRITON_PYTHON

TEXTS = ["i love this film", "terrible awful day", "okay", "the food was good but the service was bad"]


@pytest.fixture(scope="module")
def stub(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield pb_grpc.SentimentServiceStub(channel)


@pytest.fixture(scope="module")
def oip_stub(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)


def predict(stub, text: str, **options) -> pb.Prediction:
    return stub.Predict(pb.PredictRequest(text=text, options=pb.PredictOptions(**options)), timeout=10).prediction


def best_first(values: list[float], k: int) -> list[int]:
    """Class indices by value, best first, equal values in class order (the contract's rule)."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]


def violation(error: grpc.RpcError) -> str:
    """The field the rich status names (google.rpc.BadRequest)."""
    status = rpc_status.from_call(error)
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return bad.field_violations[0].field
    raise AssertionError(f"no BadRequest detail in {status}")


# sentiment.v1 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_holds_the_best_k_labels_best_first_with_their_scores_and_class_ids(stub, k):
    for text in TEXTS:
        prediction = predict(stub, text, top_k=k)
        probabilities = [s.probability for s in prediction.scores]
        assert [t.class_id for t in prediction.top] == best_first(probabilities, k)
        assert [t.label for t in prediction.top] == [LABELS[i] for i in best_first(probabilities, k)]
        assert [t.probability for t in prediction.top] == [probabilities[t.class_id] for t in prediction.top]
        assert prediction.top[0].label == prediction.label and prediction.top[0].class_id == prediction.class_id


def test_without_top_k_the_answer_is_unchanged_for_old_clients(stub):
    plain = predict(stub, TEXTS[0])
    assert not plain.top and len(plain.scores) == len(LABELS) and not plain.logits
    assert math.isclose(sum(s.probability for s in plain.scores), 1.0, rel_tol=1e-5)
    # the fields old clients read are the same with the new options set
    ranked = predict(stub, TEXTS[0], top_k=2)
    assert (ranked.label, ranked.class_id, list(ranked.scores)) == (plain.label, plain.class_id, list(plain.scores))


def test_a_k_past_the_number_of_labels_gives_every_label_as_triton_clamps(stub):
    prediction = predict(stub, TEXTS[1], top_k=50)
    assert sorted(t.class_id for t in prediction.top) == list(range(len(LABELS)))


def test_raw_scores_are_the_logits_that_return_logits_gives_and_top_ranks_by_them(stub):
    for text in TEXTS:
        with_logits = predict(stub, text, return_logits=True)
        raw = predict(stub, text, raw_scores=True, top_k=3)
        assert [s.probability for s in raw.scores] == pytest.approx(list(with_logits.logits), abs=1e-6)
        assert [s.label for s in raw.scores] == LABELS
        assert [t.class_id for t in raw.top] == best_first(list(with_logits.logits), 3)
        assert [t.probability for t in raw.top] == pytest.approx([with_logits.logits[t.class_id] for t in raw.top],
                                                                 abs=1e-6)
        assert raw.label == with_logits.label  # the prediction itself does not change
        assert not math.isclose(sum(s.probability for s in raw.scores), 1.0, abs_tol=1e-3)  # not probabilities


def test_predict_batch_ranks_every_text(stub):
    request = pb.PredictBatchRequest(texts=TEXTS, options=pb.PredictOptions(top_k=1, raw_scores=True))
    response = stub.PredictBatch(request, timeout=10)
    for text, prediction in zip(TEXTS, response.predictions):
        alone = predict(stub, text, return_logits=True)
        assert [(t.label, t.class_id) for t in prediction.top] == [(alone.label, alone.class_id)]


def test_the_stream_carries_top_k_and_raw_scores_per_item_and_refuses_a_bad_k_for_that_item_only(stub):
    requests = [pb.StreamPredictRequest(id="ranked", text=TEXTS[0], options=pb.PredictOptions(top_k=2, raw_scores=True)),
                pb.StreamPredictRequest(id="bad", text=TEXTS[0], options=pb.PredictOptions(top_k=-1)),
                pb.StreamPredictRequest(id="plain", text=TEXTS[0])]
    answers = {answer.id: answer for answer in stub.PredictStream(iter(requests), timeout=30)}
    logits = list(predict(stub, TEXTS[0], return_logits=True).logits)
    ranked = answers["ranked"].prediction
    assert [t.class_id for t in ranked.top] == best_first(logits, 2)
    assert [s.probability for s in ranked.scores] == pytest.approx(logits, abs=1e-4)  # batched with others
    assert answers["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "top_k" in answers["bad"].error.message
    assert answers["plain"].HasField("prediction") and not answers["plain"].prediction.top


@pytest.mark.parametrize("k", [-1, -(2**31)])
def test_a_negative_top_k_is_invalid_argument_naming_the_field(stub, k):
    with pytest.raises(grpc.RpcError) as caught:
        predict(stub, TEXTS[0], top_k=k)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == "options.top_k"


def test_top_k_ranks_a_chunked_text_and_each_of_its_windows(stub):
    long_text = " ".join(["the film was long and slow but the ending was good"] * 20)
    prediction = predict(stub, long_text, truncation=pb.TRUNCATION_CHUNK, return_windows=True, top_k=2)
    assert prediction.windows > 1
    assert [t.class_id for t in prediction.top] == best_first([s.probability for s in prediction.scores], 2)
    for window in prediction.window_predictions:
        assert len(window.prediction.top) == 2


# Open Inference Protocol: Triton's classification extension ---------------------------------------------

def infer(oip_stub, outputs: dict[str, int | None], raw: bool = False, **parameters) -> oip.ModelInferResponse:
    """``outputs``: name -> classification count (None: the plain tensor)."""
    request = oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[len(TEXTS)],
        contents=oip.InferTensorContents(bytes_contents=[t.encode() for t in TEXTS]))])
    for name, count in outputs.items():
        output = request.outputs.add(name=name)
        if count is not None:
            output.parameters["classification"].int64_param = count
    for name, value in parameters.items():
        request.parameters[name].bool_param = value
    return oip_stub.ModelInfer(request, timeout=10)


def tensor(response: oip.ModelInferResponse, name: str):
    return next(t for t in response.outputs if t.name == name)


def rows(values: list, width: int) -> list[list]:
    return [values[i : i + width] for i in range(0, len(values), width)]


def expected_strings(matrix: list[list[float]], k: int) -> list[list[str]]:
    """Triton's "<value>:<index>:<label>", the value as std::to_string writes a float."""
    return [[f"{row[i]:f}:{i}:{LABELS[i]}" for i in best_first(row, k)] for row in matrix]


@pytest.mark.parametrize("k", [1, 2])
def test_classification_answers_the_output_as_triton_strings_best_first(oip_stub, k):
    plain = infer(oip_stub, {"scores": None, "logits": None})
    scores = rows(list(tensor(plain, "scores").contents.fp32_contents), len(LABELS))
    logits = rows(list(tensor(plain, "logits").contents.fp32_contents), len(LABELS))
    ranked = infer(oip_stub, {"label": None, "scores": k, "logits": k})
    assert [t.name for t in ranked.outputs] == ["label", "scores", "logits"]  # the order asked for
    for name, matrix in (("scores", scores), ("logits", logits)):
        out = tensor(ranked, name)
        assert (out.datatype, list(out.shape)) == ("BYTES", [len(TEXTS), k])
        got = rows([b.decode() for b in out.contents.bytes_contents], k)
        assert got == expected_strings(matrix, k)
        assert "labels" not in out.parameters
    assert [b.decode() for b in tensor(ranked, "label").contents.bytes_contents] == [row[0].split(":")[2] for row in
                                                                                  expected_strings(scores, 1)]


def test_classification_past_the_labels_is_clamped_and_raw_contents_carry_it_too(oip_stub):
    request = oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[1])], raw_input_contents=[len(TEXTS[0]).to_bytes(4, "little")
                                                                        + TEXTS[0].encode()])
    request.outputs.add(name="scores").parameters["classification"].int64_param = 99
    response = oip_stub.ModelInfer(request, timeout=10)
    out = tensor(response, "scores")
    assert (out.datatype, list(out.shape)) == ("BYTES", [1, len(LABELS)])
    raw = response.raw_output_contents[0]
    elements, offset = [], 0
    while offset < len(raw):
        size = int.from_bytes(raw[offset : offset + 4], "little")
        elements.append(raw[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    assert sorted(int(e.split(":")[1]) for e in elements) == [0, 1, 2]
    values = [float(e.split(":")[0]) for e in elements]
    assert values == sorted(values, reverse=True)


def test_the_raw_scores_parameter_puts_the_logits_in_scores(oip_stub):
    plain = infer(oip_stub, {"scores": None, "logits": None})
    raw = infer(oip_stub, {"scores": None}, raw_scores=True)
    assert list(tensor(raw, "scores").contents.fp32_contents) == pytest.approx(
        list(tensor(plain, "logits").contents.fp32_contents), abs=1e-6)
    ranked = infer(oip_stub, {"scores": 3}, raw_scores=True)
    logits = rows(list(tensor(plain, "logits").contents.fp32_contents), len(LABELS))
    assert rows([b.decode() for b in tensor(ranked, "scores").contents.bytes_contents], 3) == expected_strings(logits, 3)


@pytest.mark.parametrize("name, set_value, field", [
    ("scores", lambda p: setattr(p, "int64_param", 0), "outputs.scores.parameters.classification"),
    ("scores", lambda p: setattr(p, "int64_param", -2), "outputs.scores.parameters.classification"),
    ("scores", lambda p: setattr(p, "string_param", "2"), "outputs.scores.parameters.classification"),
    ("logits", lambda p: setattr(p, "double_param", 2.0), "outputs.logits.parameters.classification"),
    ("label", lambda p: setattr(p, "int64_param", 2), "outputs.label.parameters.classification"),
    ("class_id", lambda p: setattr(p, "int64_param", 1), "outputs.class_id.parameters.classification"),
], ids=["zero", "negative", "string", "double", "label", "class_id"])
def test_a_bad_classification_parameter_is_invalid_argument_naming_it(oip_stub, name, set_value, field):
    request = oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[1], contents=oip.InferTensorContents(bytes_contents=[b"good"]))])
    set_value(request.outputs.add(name=name).parameters["classification"])
    with pytest.raises(grpc.RpcError) as caught:
        oip_stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == field


def test_a_raw_scores_parameter_that_is_not_a_bool_is_refused(oip_stub):
    request = oip.ModelInferRequest(model_name="sentiment", inputs=[oip.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[1], contents=oip.InferTensorContents(bytes_contents=[b"good"]))])
    request.parameters["raw_scores"].string_param = "yes"
    with pytest.raises(grpc.RpcError) as caught:
        oip_stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == "parameters.raw_scores"


def test_tritonclient_class_count_gets_the_same_strings(grpc_server):
    """tritonclient's own ``InferRequestedOutput(name, class_count=k)`` over gRPC, in its own process."""
    assert TRITON_PYTHON.exists(), f"{TRITON_PYTHON} is missing: `make install` builds it"
    result = subprocess.run([str(TRITON_PYTHON), str(PROBE), "classification-grpc", grpc_server.target, "sentiment",
                             "2", *TEXTS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "classification" in answer["extensions"]
    assert answer["datatypes"] == {"scores": "BYTES", "logits": "BYTES"}
    assert answer["shapes"] == {"scores": [len(TEXTS), 2], "logits": [len(TEXTS), 2]}
    assert answer["classified_scores"] == expected_strings(answer["scores"], 2)
    assert answer["classified_logits"] == expected_strings(answer["logits"], 2)
