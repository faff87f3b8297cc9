"""Text pairs (a second segment, ``text_pair``, as TEI's PredictPair) over sentiment.v1 (unary, batch, stream,
Explain) and the Open Inference Protocol's gRPC service (the generated stub), on the real server over a socket,
against what the tiny pair model computes offline for ``tokenizer(text, pair)``."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import torch
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sentiment.oip import grpc_predict_v2_pb2 as oip
from sentiment.oip import grpc_predict_v2_pb2_grpc as oip_grpc
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

TEXT, PAIR = "the food was good but the service was bad", "service"
PAIRS = [("the food was good but the service was bad", "food"), ("i love this film", "the night"),
         ("terrible awful day", "happy")]
LONG_TEXT = " ".join(["good"] * 50)  # with a pair of 20 words, past the tiny model's 64 tokens
LONG_PAIR = " ".join(["bad"] * 20)


@pytest.fixture(scope="module")
def stub(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield pb_grpc.SentimentServiceStub(channel)


@pytest.fixture(scope="module")
def oip_stub(grpc_server):
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield oip_grpc.GRPCInferenceServiceStub(channel)


def offline(classifier, text: str, pair: str | None = None, **cut) -> tuple[np.ndarray, int]:
    """The model's logits and token count for ``tokenizer(text, pair)``, computed here without the server."""
    encoded = classifier.tokenizer.hf(text, pair, return_tensors="pt", **cut)
    with torch.inference_mode():
        return classifier.model(**encoded).logits[0].float().numpy(), encoded["input_ids"].shape[1]


def logits(prediction: pb.Prediction) -> np.ndarray:
    return np.array(prediction.logits, dtype=np.float32)


def predict(stub, text: str, pair: str = "", **options) -> pb.Prediction:
    return stub.Predict(pb.PredictRequest(text=text, text_pair=pair, options=pb.PredictOptions(return_logits=True,
                                                                                              **options)),
                        timeout=10).prediction


def violation(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return bad.field_violations[0].field
    raise AssertionError(f"no BadRequest detail in {status}")


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    return caught.value


def test_the_tiny_model_reads_segments(classifier):
    assert classifier.model.config.type_vocab_size == 2 and classifier.tokenizer.segments
    encoded = classifier.tokenizer.hf(TEXT, PAIR)
    assert set(encoded["token_type_ids"]) == {0, 1}


def test_a_pair_is_what_the_model_computes_for_the_tokenizers_pair_not_the_joined_text(stub, classifier):
    prediction = predict(stub, TEXT, PAIR)
    expected, tokens = offline(classifier, TEXT, PAIR)
    np.testing.assert_allclose(logits(prediction), expected, atol=1e-4)
    assert prediction.num_tokens == tokens and not prediction.truncated  # both segments counted
    joined = predict(stub, f"{TEXT} {PAIR}")
    assert np.abs(logits(joined) - logits(prediction)).max() > 1e-3  # token types (and the [SEP]) count
    np.testing.assert_allclose(logits(joined), offline(classifier, f"{TEXT} {PAIR}")[0], atol=1e-4)


def test_an_empty_pair_is_no_pair_in_sentiment_v1(stub):
    assert list(predict(stub, TEXT, "").logits) == list(predict(stub, TEXT).logits)


def test_a_pair_over_the_limit_is_cut_longest_first_and_says_so(stub, classifier):
    prediction = predict(stub, LONG_TEXT, LONG_PAIR)
    assert prediction.truncated and prediction.num_tokens == classifier.max_tokens
    expected, _ = offline(classifier, LONG_TEXT, LONG_PAIR, truncation="longest_first", max_length=classifier.max_tokens)
    np.testing.assert_allclose(logits(prediction), expected, atol=1e-4)
    # longest-first keeps the short pair whole: cutting only the text ("only_first") gives the same here, cutting
    # the pair first would not
    only_second = classifier.tokenizer.hf(LONG_TEXT, LONG_PAIR, truncation="only_second",
                                          max_length=classifier.max_tokens)
    assert len(only_second["input_ids"]) == classifier.max_tokens
    assert not np.allclose(offline(classifier, LONG_TEXT, LONG_PAIR, truncation="only_second",
                                   max_length=classifier.max_tokens)[0], logits(prediction), atol=1e-4)


def test_reject_refuses_a_pair_over_the_limit(stub):
    error = refused(lambda: predict(stub, LONG_TEXT, LONG_PAIR, truncation=pb.TRUNCATION_REJECT))
    assert violation(error) == "text_pairs[0]"
    assert not predict(stub, "i love this", "good", truncation=pb.TRUNCATION_REJECT).truncated


def test_chunk_with_a_pair_is_refused_naming_the_truncation(stub):
    error = refused(lambda: predict(stub, TEXT, PAIR, truncation=pb.TRUNCATION_CHUNK))
    assert violation(error) == "options.truncation" and "pair" in error.details()


def test_a_blank_pair_is_refused_naming_it(stub):
    error = refused(lambda: predict(stub, TEXT, "   "))
    assert violation(error) == "text_pairs[0]"


def test_several_pairs_in_one_batch_equal_each_alone(stub, classifier):
    texts, pairs = [t for t, _ in PAIRS], [p for _, p in PAIRS]
    batch = stub.PredictBatch(pb.PredictBatchRequest(texts=texts + ["okay"], text_pairs=pairs + [""],
                                                     options=pb.PredictOptions(return_logits=True)), timeout=10)
    for (text, pair), prediction in zip(PAIRS, batch.predictions):
        np.testing.assert_allclose(logits(prediction), logits(predict(stub, text, pair)), atol=1e-4)
        np.testing.assert_allclose(logits(prediction), offline(classifier, text, pair)[0], atol=1e-4)
    # the text without a pair ("") reads as itself, padded in a batch whose other rows have token types
    np.testing.assert_allclose(logits(batch.predictions[-1]), logits(predict(stub, "okay")), atol=1e-4)


def test_a_batch_needs_one_pair_per_text(stub):
    error = refused(lambda: stub.PredictBatch(pb.PredictBatchRequest(texts=["a", "b"], text_pairs=["c"]), timeout=10))
    assert violation(error) == "text_pairs"


def test_the_stream_carries_each_items_pair(stub, classifier):
    requests = [pb.StreamPredictRequest(id=str(i), text=t, text_pair=p, options=pb.PredictOptions(return_logits=True))
                for i, (t, p) in enumerate(PAIRS)]
    requests.append(pb.StreamPredictRequest(id="bad", text=TEXT, text_pair=PAIR,
                                            options=pb.PredictOptions(truncation=pb.TRUNCATION_CHUNK)))
    answers = {a.id: a for a in stub.PredictStream(iter(requests), timeout=30)}
    for i, (text, pair) in enumerate(PAIRS):
        np.testing.assert_allclose(logits(answers[str(i)].prediction), offline(classifier, text, pair)[0], atol=1e-4)
    assert answers["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_explain_attributes_the_words_of_both_segments_with_their_own_offsets(stub):
    text, pair = "the food was good", "service night"
    response = stub.Explain(pb.ExplainRequest(text=text, text_pair=pair, steps=8), timeout=60)
    words = [(w.segment, w.word) for w in response.words]
    assert words == [(0, "the"), (0, "food"), (0, "was"), (0, "good"), (1, "service"), (1, "night")]
    for w in response.words:
        assert (text, pair)[w.segment][w.start:w.end] == w.word
    assert response.prediction.num_tokens == 9  # [CLS] 4 words [SEP] 2 words [SEP]
    plain = stub.Explain(pb.ExplainRequest(text=text, steps=8), timeout=60)
    assert {w.segment for w in plain.words} == {0} and len(plain.words) == 4


def test_explain_refuses_a_blank_pair_and_reject_a_long_one(stub):
    error = refused(lambda: stub.Explain(pb.ExplainRequest(text=TEXT, text_pair=" ", steps=2), timeout=10))
    assert violation(error) == "text_pair"
    error = refused(lambda: stub.Explain(pb.ExplainRequest(text=LONG_TEXT, text_pair=LONG_PAIR, steps=2,
                                                           truncation=pb.TRUNCATION_REJECT), timeout=10))
    assert violation(error) == "text_pair"


# Open Inference Protocol (gRPC) ---------------------------------------------------------------------------

def bytes_input(name: str, values: list[str]) -> oip.ModelInferRequest.InferInputTensor:
    return oip.ModelInferRequest.InferInputTensor(
        name=name, datatype="BYTES", shape=[len(values)],
        contents=oip.InferTensorContents(bytes_contents=[v.encode() for v in values]))


def infer(oip_stub, texts: list[str], pairs: list[str] | None = None, raw: bool = False) -> oip.ModelInferResponse:
    inputs = [bytes_input("text", texts)] + ([bytes_input("text_pair", pairs)] if pairs is not None else [])
    request = oip.ModelInferRequest(model_name="sentiment", inputs=inputs,
                                    outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name="logits")])
    if raw:
        from server.transport.oip_converters import join_bytes_tensor

        for tensor in request.inputs:
            request.raw_input_contents.append(join_bytes_tensor(list(tensor.contents.bytes_contents)))
            tensor.ClearField("contents")
    return oip_stub.ModelInfer(request, timeout=10)


def oip_logits(response: oip.ModelInferResponse) -> np.ndarray:
    (output,) = response.outputs
    if response.raw_output_contents:
        return np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(list(output.shape))
    return np.array(output.contents.fp32_contents, dtype=np.float32).reshape(list(output.shape))


@pytest.mark.parametrize("raw", [False, True])
def test_oip_takes_text_pair_as_a_second_input(oip_stub, classifier, raw):
    texts, pairs = [t for t, _ in PAIRS], [p for _, p in PAIRS]
    got = oip_logits(infer(oip_stub, texts, pairs, raw=raw))
    for row, (text, pair) in enumerate(PAIRS):
        np.testing.assert_allclose(got[row], offline(classifier, text, pair)[0], atol=1e-4)
    np.testing.assert_allclose(oip_logits(infer(oip_stub, texts)), [offline(classifier, t)[0] for t in texts], atol=1e-4)


def test_oip_refuses_a_pair_input_of_another_shape_or_an_empty_element(oip_stub):
    error = refused(lambda: infer(oip_stub, ["a", "b"], ["c"]))
    assert violation(error) == "text_pair"
    error = refused(lambda: infer(oip_stub, ["a", "b"], ["c", ""]))
    assert violation(error) == "text_pair[1]"


def test_oip_metadata_lists_text_pair(oip_stub):
    metadata = oip_stub.ModelMetadata(oip.ModelMetadataRequest(name="sentiment"), timeout=10)
    assert [(i.name, i.datatype, list(i.shape)) for i in metadata.inputs] == [("text", "BYTES", [-1]),
                                                                              ("text_pair", "BYTES", [-1])]
