"""Loading checkpoints safely and encoding texts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from server.errors import InvalidInput, ModelLoadError
from server.core.classifier import SequenceClassifier
from tests.support.helpers import LABELS, build_tiny_model


def test_loads_labels_limit_and_a_stable_weights_hash(classifier, tiny_model_dir):
    assert classifier.labels == LABELS
    assert classifier.max_tokens == 64
    again = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32")
    assert again.weights_sha256 == classifier.weights_sha256


def test_different_weights_have_a_different_hash(tmp_path, classifier):
    other = SequenceClassifier(str(build_tiny_model(tmp_path / "other", seed=1)), device="cpu", dtype="float32")
    assert other.weights_sha256 != classifier.weights_sha256


def test_pickle_only_checkpoint_is_refused_with_a_clear_message(tmp_path, tiny_model_dir):
    unsafe = tmp_path / "unsafe"
    shutil.copytree(tiny_model_dir, unsafe)
    state = {k: v for k, v in SequenceClassifier(str(tiny_model_dir), device="cpu").model.state_dict().items()}
    torch.save(state, unsafe / "pytorch_model.bin")
    (unsafe / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no .safetensors weights.*pytorch_model.bin"):
        SequenceClassifier(str(unsafe))


def test_missing_checkpoint_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError):
        SequenceClassifier(str(tmp_path / "nothing-here"))


def test_encode_truncates_keeping_the_closing_token_or_rejects(classifier):
    short, long = classifier.encode(["good film", "good " * 100])
    assert (short.num_tokens, short.truncated) == (4, False)
    assert (long.num_tokens, long.truncated) == (64, True)
    assert long.input_ids[-1] == classifier.tokenizer.hf.sep_token_id
    with pytest.raises(InvalidInput) as error:
        classifier.encode(["ok", "good " * 100], truncate=False)
    assert error.value.field == "texts[1]"


def test_padding_does_not_change_a_texts_logits(classifier):
    texts = ["good", "the food was not very good but the service was great"]
    together = classifier.predict_logits(texts)
    alone = np.stack([classifier.predict_logits([t])[0] for t in texts])
    assert together == pytest.approx(alone, abs=1e-5)


def test_bfloat16_runs_and_agrees_with_float32_on_the_tiny_model(tiny_model_dir, classifier):
    bf16 = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    assert bf16.dtype_name == "bfloat16"
    texts = ["i love this", "bad film", "okay day"]
    # bf16 keeps ~3 significant digits: logits agree to a few hundredths, not more (kernels differ per CPU)
    assert bf16.predict_logits(texts) == pytest.approx(classifier.predict_logits(texts), abs=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_path_matches_cpu(tiny_model_dir, classifier):
    gpu = SequenceClassifier(str(tiny_model_dir), device="cuda", dtype="float32")
    assert gpu.device_name.startswith("cuda")
    texts = ["i love this", "bad film"]
    assert gpu.predict_logits(texts) == pytest.approx(classifier.predict_logits(texts), abs=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_auto_dtype_serves_over_grpc_with_cpu_labels(tiny_model_dir, classifier):
    """device=auto picks the GPU, dtype=auto picks bf16/fp16 there, and what it serves matches the CPU's float32."""
    from clients import SentimentClient
    from tests.support.helpers import server_settings
    from tests.support.helpers import ServerThread

    gpu = SequenceClassifier(str(tiny_model_dir), device="auto", dtype="auto")
    assert gpu.device_name.startswith("cuda") and gpu.dtype_name in ("bfloat16", "float16")
    texts = ["i love this", "bad film", "okay day", "an utterly wonderful and moving story"]
    expected = classifier.predict_logits(texts)
    with ServerThread(server_settings(tiny_model_dir, device="auto", dtype="auto"), gpu) as running:
        with SentimentClient(running.target, timeout=30) as client:
            info = client.model_info()
            assert info.device.startswith("cuda")
            served = client.predict_batch(texts, return_logits=True)
    assert np.array([p.logits for p in served]) == pytest.approx(expected, abs=0.1)


def test_the_fast_tokenizer_path_matches_transformers_tokenizer(classifier):
    """encode() calls the Rust tokenizer directly (the request path's cheapest way in); it must give the
    ids the model's own tokenizer gives, special tokens included."""
    texts = ["good film", "I LOVE this!!", "naïve café — 東京 🎉", "  spaced   out  ", "good " * 100]
    expected = classifier.tokenizer.hf(texts, add_special_tokens=True)["input_ids"]
    got = [e.input_ids for e in classifier.encode(texts[:-1])] + [classifier.encode(texts[-1:])[0].input_ids]
    assert got[:-1] == expected[:-1]
    assert got[-1] == expected[-1][: classifier.max_tokens - 1] + expected[-1][-1:]
