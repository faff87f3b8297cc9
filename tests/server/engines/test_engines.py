"""The engines behind the batcher: ONNX Runtime against torch, the engine cache, fallback, and auto's choice."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from server.engines import onnx_engine, select
from server.engines import Engine, Route
from server.engines.select import RoutedEngine, fastest_by_size
from server.core.classifier import SequenceClassifier
from tests.support.helpers import build_tiny_model

TEXTS = ["i love this", "bad film", "okay day", "the food was not very good but the service was great " * 3]


@pytest.fixture
def engine_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "engines"


@pytest.fixture(scope="module")
def onnx_classifier(tiny_model_dir):
    return SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32", engine="onnxruntime")


def test_onnxruntime_logits_match_torch_float32(onnx_classifier, classifier):
    assert (onnx_classifier.engine_name, onnx_classifier.dtype_name) == ("onnxruntime", "float32")
    assert np.abs(onnx_classifier.predict_logits(TEXTS) - classifier.predict_logits(TEXTS)).max() < 1e-3


def test_the_exported_graph_is_fused_by_the_transformer_optimizer(onnx_classifier):
    import json

    fused = json.loads((onnx_classifier.engine.path.parent / "engine.json").read_text())["fused"]
    assert fused.get("Attention", 0) == 2  # one fused attention per layer of the tiny model
    assert fused.get("SkipLayerNormalization", 0) > 0


def test_int8_runs_on_onnxruntime_and_stays_near_float32(tiny_model_dir, classifier):
    int8 = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine="onnxruntime")
    assert (int8.engine_name, int8.dtype_name) == ("onnxruntime", "int8")
    logits = int8.predict_logits(TEXTS)
    assert logits.shape == (len(TEXTS), 3) and np.isfinite(logits).all()
    assert np.abs(logits - classifier.predict_logits(TEXTS)).max() < 0.5  # quantized: close, not equal


def test_int8_scales_are_chosen_by_measured_error_against_float32():
    from server.engines.quantization import closest_to_reference

    reference = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    best, errors = closest_to_reference(reference, {"per_tensor": reference + 0.3, "per_channel": reference - 0.1})
    assert best == "per_channel" and errors == pytest.approx({"per_tensor": 0.3, "per_channel": 0.1})


def _onnx_weight_scales(path) -> list[np.ndarray]:
    """The weight scales of the quantized MatMuls (one value per tensor, or one per output channel)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = [n.input[1] for n in graph.node if n.op_type == "MatMulInteger" and n.input[1] in initializers]
    return [initializers[w.replace("_quantized", "_scale")] for w in weights]


@pytest.mark.parametrize("scheme", ["per_tensor", "per_channel"])
def test_int8_serves_the_scheme_its_measurement_chose_on_both_engines(tiny_model_dir, engine_cache, monkeypatch, scheme):
    import json

    import torch

    from server.engines import quantization, torch_engine

    def choose(reference, outputs):
        assert set(outputs) == set(quantization.SCHEMES)  # every scheme was built and run
        return scheme, {name: 0.0 for name in outputs}

    monkeypatch.setattr(onnx_engine, "closest_to_reference", choose)
    monkeypatch.setattr(torch_engine, "closest_to_reference", choose)
    # the int8 engine itself (recheck_margin=0: no float32 re-check around it)
    ort = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine="onnxruntime", recheck_margin=0)
    scales = _onnx_weight_scales(ort.engine.path)
    assert scales and all((s.size > 1) == (scheme == "per_channel") for s in scales)
    assert json.loads((ort.engine.path.parent / "engine.json").read_text())["quantization"]["scheme"] == scheme

    quantized = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="int8", engine="torch",
                                   recheck_margin=0).engine.model
    linears = [m for m in quantized.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    expected = torch.per_channel_affine if scheme == "per_channel" else torch.per_tensor_affine
    assert linears and all(m.weight().qscheme() == expected for m in linears)


def test_the_int8_cache_key_follows_the_quantization_options(monkeypatch):
    before = {variant: onnx_engine.cache_key("w", {}, variant) for variant in ("float32", "int8")}
    monkeypatch.setattr(onnx_engine, "QUANTIZATION", {**onnx_engine.QUANTIZATION, "schemes": ["per_tensor"]})
    assert onnx_engine.cache_key("w", {}, "int8") != before["int8"]  # a file built another way is never loaded
    assert onnx_engine.cache_key("w", {}, "float32") == before["float32"]


def test_the_engine_cache_is_reused_and_rebuilt_when_the_weights_change(tmp_path, engine_cache, monkeypatch):
    model = build_tiny_model(tmp_path / "model")
    SequenceClassifier(str(model), device="cpu", dtype="float32", engine="onnxruntime")
    built = sorted(engine_cache.glob("*/model.onnx"))
    assert len(built) == 1

    exports = []
    real_export = onnx_engine._export
    monkeypatch.setattr(onnx_engine, "_export", lambda *a: (exports.append(a), real_export(*a)))
    again = SequenceClassifier(str(model), device="cpu", dtype="float32", engine="onnxruntime")
    assert again.engine_name == "onnxruntime" and exports == []  # loaded from the cache, not exported again

    build_tiny_model(tmp_path / "model", seed=1)  # new weights in the same directory
    changed = SequenceClassifier(str(model), device="cpu", dtype="float32", engine="onnxruntime")
    assert len(exports) == 1 and changed.engine_name == "onnxruntime"
    assert len(sorted(engine_cache.glob("*/model.onnx"))) == 2


@pytest.mark.parametrize("requested", ["onnxruntime", "auto"])
def test_a_model_the_export_cannot_handle_falls_back_to_torch_with_one_clear_line(
        tiny_model_dir, engine_cache, monkeypatch, caplog, requested):
    def unsupported(*args):
        raise RuntimeError("Exporting the operator 'aten::fancy_op' to ONNX opset version 17 is not supported")

    monkeypatch.setattr(onnx_engine, "_export", unsupported)
    with caplog.at_level(logging.WARNING, logger="server.engines.select"):
        fallback = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32", engine=requested)
    assert fallback.engine_name == "torch"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "server.engines.select"]
    assert "onnxruntime cannot serve this model" in line and "aten::fancy_op" in line and "falling back to torch" in line
    assert fallback.predict_logits(TEXTS).shape == (len(TEXTS), 3)


class FakeEngine(Engine):
    device = "cpu"

    def __init__(self, name: str):
        self.name, self.dtype = name, "float32"

    def run(self, input_ids, attention_mask):
        return np.zeros((len(input_ids), 3), dtype=np.float32)


def test_auto_routes_each_batch_size_to_the_engine_measured_fastest_at_it(monkeypatch):
    small, large = FakeEngine("small-batch-engine"), FakeEngine("large-batch-engine")
    timings = {("small-batch-engine", 1): 1.0, ("small-batch-engine", 4): 2.0, ("small-batch-engine", 16): 9.0,
               ("small-batch-engine", 32): 20.0, ("large-batch-engine", 1): 2.0, ("large-batch-engine", 4): 3.0,
               ("large-batch-engine", 16): 6.0, ("large-batch-engine", 32): 10.0}
    monkeypatch.setattr(select, "seconds_per_batch", lambda engine, size, *a, **k: timings[engine.name, size])
    chosen = fastest_by_size([small, large], [1, 4, 16, 32], 24, 5)
    assert isinstance(chosen, RoutedEngine)
    assert [chosen.engine_for(n).name for n in (1, 3, 4, 5, 16, 32, 64)] == [
        "small-batch-engine"] * 3 + ["large-batch-engine"] * 4
    assert chosen.name == "small-batch-engine+large-batch-engine"


def test_auto_keeps_one_engine_when_it_wins_at_every_size(monkeypatch):
    fast, slow = FakeEngine("fast"), FakeEngine("slow")
    monkeypatch.setattr(select, "seconds_per_batch", lambda engine, size, *a, **k: size * (1 if engine is fast else 2))
    assert fastest_by_size([slow, fast], [1, 4, 16, 32], 24, 5) is fast


def test_auto_does_not_route_on_a_win_within_timing_noise(monkeypatch):
    """torch 5% faster at batch 32 only, ONNX Runtime 2-3x faster below: one engine, not a route chosen by
    noise; the candidates are timed in turns, not one after the other."""
    onnx, torch_ = FakeEngine("onnxruntime"), FakeEngine("torch")
    timings = {("onnxruntime", 1): 6.0, ("onnxruntime", 4): 12.0, ("onnxruntime", 16): 100.0, ("onnxruntime", 32): 210.0,
               ("torch", 1): 19.0, ("torch", 4): 30.0, ("torch", 16): 110.0, ("torch", 32): 200.0}
    order = []

    def timed(engine, size, *args, **kwargs):
        order.append(engine.name)
        return timings[engine.name, size]

    monkeypatch.setattr(select, "seconds_per_batch", timed)
    assert fastest_by_size([onnx, torch_], [1, 4, 16, 32], 24, 5) is onnx
    assert order[:4] == ["onnxruntime", "torch", "onnxruntime", "torch"]
    timings["torch", 32] = 150.0  # a clear win (29%): batches of 32 go to torch
    assert fastest_by_size([onnx, torch_], [1, 4, 16, 32], 24, 5).engine_for(32) is torch_


def test_a_routed_engine_runs_each_batch_on_its_own_engine():
    calls = []

    class Recording(FakeEngine):
        def run(self, input_ids, attention_mask):
            calls.append((self.name, len(input_ids)))
            return super().run(input_ids, attention_mask)

    routed = RoutedEngine([Route(4, Recording("a")), Route(32, Recording("b"))])
    for size in (1, 4, 5, 40):
        ids = np.ones((size, 3), dtype=np.int64)
        assert routed.run(ids, ids).shape == (size, 3)
    assert calls == [("a", 1), ("a", 4), ("b", 5), ("b", 40)]


def test_the_server_reports_its_engine_and_learned_batch_costs(tiny_model_dir, onnx_classifier):
    from clients import SentimentClient
    from tests.support.helpers import server_settings
    from tests.support.helpers import ServerThread

    with ServerThread(server_settings(tiny_model_dir, engine="onnxruntime"), onnx_classifier) as running:
        with SentimentClient(running.target, timeout=30) as client:
            client.predict_batch(["good", "bad film"])
            info = client.model_info()
    assert (info.engine, info.dtype) == ("onnxruntime", "float32")
    (cost,) = info.batch_costs
    assert cost.engine == "onnxruntime float32"
    assert cost.batches == 6 + 1  # the warm-up's shapes (8 and 32 tokens x 1, 8, 32 texts), then the call above
    assert cost.fixed_seconds >= 0 and cost.seconds_per_token >= 0
    assert cost.fixed_seconds + cost.seconds_per_token > 0
