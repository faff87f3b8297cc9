"""Text pairs in the engines: the runner pads segment ids (token_type_ids) only for batches that hold a pair, and
both engines (torch, ONNX Runtime) read them, so a mixed batch of pairs and plain texts equals each text alone."""

from __future__ import annotations

import numpy as np
import pytest

from server.core.classifier import SequenceClassifier
from server.engines.runner import ModelRunner

PAIRS = [("the food was good but the service was bad", "food"), ("i love this film", None),
         ("terrible awful day", "happy night")]


@pytest.fixture
def engine_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_MODEL_CACHE", str(tmp_path / "cache"))


def encodings(classifier):
    return classifier.tokenizer.encode_pairs([t for t, _ in PAIRS], [p for _, p in PAIRS])


def test_plain_batches_carry_no_segment_ids(classifier):
    plain = classifier.encode(["i love this", "bad"])
    assert all(e.token_type_ids is None for e in plain)
    assert ModelRunner.token_types(plain, 5) is None  # the plain path runs as before: two inputs


def test_a_mixed_batch_pads_segment_ids_with_zeros(classifier):
    batch = encodings(classifier)
    assert batch[1].token_type_ids is None and set(batch[0].token_type_ids) == {0, 1}
    ids, _ = ModelRunner.pad(batch, classifier.tokenizer.pad_token_id)
    types = ModelRunner.token_types(batch, ids.shape[1])
    assert types.shape == ids.shape and not types[1].any()
    assert list(types[0, : batch[0].num_tokens]) == batch[0].token_type_ids and not types[0, batch[0].num_tokens :].any()


def test_torch_reads_a_mixed_batch_as_each_text_alone(classifier):
    together = classifier.forward(encodings(classifier))
    for row, (text, pair) in enumerate(PAIRS):
        alone = classifier.forward(classifier.tokenizer.encode_pairs([text], [pair]))
        np.testing.assert_allclose(together[row], alone[0], atol=1e-4)


def test_onnxruntime_takes_segment_ids_and_matches_torch(engine_cache, tiny_model_dir, classifier):
    onnx = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32", engine="onnxruntime")
    assert onnx.engine_name == "onnxruntime" and onnx.engine.takes_token_types
    batch = encodings(classifier)
    np.testing.assert_allclose(onnx.forward(batch), classifier.forward(batch), atol=1e-3)
    plain = classifier.encode(["i love this", "bad film"])  # zeros fed for plain batches
    np.testing.assert_allclose(onnx.forward(plain), classifier.forward(plain), atol=1e-3)
    paired = classifier.tokenizer.encode_pairs(["i love this"], ["bad film"])
    assert np.abs(onnx.forward(paired) - onnx.forward(classifier.encode(["i love this bad film"]))).max() > 1e-3
