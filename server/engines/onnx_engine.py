"""The ONNX Runtime engine (CPU): the checkpoint exported once, fused by ONNX Runtime's transformer
optimizer, optionally quantized to int8, and cached so that a restart loads in seconds.

Export runs the model with eager attention: the optimizer recognises BERT's attention, LayerNorm and
GELU subgraphs only in that shape (an SDPA export is left unfused). The cache key covers the weights
hash, the architecture, the variant and the library versions, so new weights or a new onnxruntime
rebuild the file instead of loading a stale one. Models the export or the optimizer cannot handle
raise ``EngineUnavailable``; the caller logs one line and falls back to torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from server.engines import Engine, reads_token_types
from server.engines.quantization import SCHEMES, closest_to_reference

log = logging.getLogger(__name__)

OPSET = 17
# what the export takes: token_type_ids only for models that read segments (``reads_token_types``)
EXPORT_INPUTS = ["input_ids", "attention_mask", "token_type_ids if the model reads segments"]
# model types the transformer optimizer knows by name (onnxruntime.transformers.optimizer.MODEL_TYPES)
OPTIMIZER_MODEL_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert",
                         "camembert": "bert", "electra": "bert", "mpnet": "bert", "deberta-v2": "bert",
                         "albert": "bert"}


class EngineUnavailable(RuntimeError):
    """This engine cannot run this model here (library missing, export or optimisation failed)."""


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opset": str(OPSET)}


# Dynamic int8 weights, one scale per tensor or per output channel, whichever runs the calibration
# sentences closer to float32 (server.engines.quantization); part of the cache key.
QUANTIZATION = {"weight_type": "QInt8", "schemes": list(SCHEMES), "chosen_by": "mean abs logit difference"}


def cache_key(weights_sha256: str, config: dict, variant: str) -> str:
    """Weights, architecture, variant (with its quantization options), the export's inputs and library versions:
    a change in any of them is a new file."""
    recipe = {"variant": variant, "inputs": EXPORT_INPUTS,
              **({"quantization": QUANTIZATION} if variant == "int8" else {})}
    payload = json.dumps({"weights": weights_sha256, "config": config, **recipe, **_versions()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _export(model_source: str, path: Path) -> None:
    """torch -> ONNX with dynamic batch and sequence axes, eager attention, fp32."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        model_source, use_safetensors=True, trust_remote_code=False, attn_implementation="eager", dtype=torch.float32,
    ).eval()
    model.config.return_dict = False
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    inputs, names = (ids, mask), ["input_ids", "attention_mask"]
    if reads_token_types(model.config):  # text pairs: the second segment's ids go in as 1s
        inputs, names = (ids, mask, torch.zeros_like(ids)), names + ["token_type_ids"]
    # the exporter's tracer warns about every Python branch on a tensor in transformers' code: known, harmless
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs, str(path), input_names=names, output_names=["logits"],
            dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in names}, "logits": {0: "batch"}},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )


def _optimize(source: Path, target: Path, config) -> dict[str, int]:
    """Fuse attention, LayerNorm, GELU and embeddings; returns the fused operator counts."""
    from onnxruntime.transformers import optimizer

    model_type = OPTIMIZER_MODEL_TYPES.get(getattr(config, "model_type", ""), "bert")
    optimized = optimizer.optimize_model(
        str(source), model_type=model_type, num_heads=config.num_attention_heads, hidden_size=config.hidden_size,
        opt_level=1, use_gpu=False,
    )
    optimized.save_model_to_file(str(target))
    return {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}


class _QuantizerAdvice(logging.Filter):
    """ONNX Runtime's quantizer logs advice for static quantization ("run pre-processing before
    quantization") through the root logger on every build; it does not apply to dynamic int8."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ("onnxruntime" in record.pathname and "quantization" in record.pathname)


@contextlib.contextmanager
def _quantizer_advice_muted():
    advice = _QuantizerAdvice()
    for handler in logging.getLogger().handlers:
        handler.addFilter(advice)
    try:
        yield
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(advice)


def _quantize_each(source: Path, built: dict, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for scheme in SCHEMES:
        built[scheme] = target.with_name(f"int8-{scheme}.onnx")
        # the fused operators (Attention, SkipLayerNormalization) are not in ONNX's shape inference: their
        # outputs are float32, which the quantizer has to be told
        quantize_dynamic(str(source), str(built[scheme]), weight_type=QuantType[QUANTIZATION["weight_type"]],
                         per_channel=scheme == "per_channel", extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _quantize(source: Path, target: Path, calibration: tuple[np.ndarray, np.ndarray]) -> dict:
    """Each scheme quantized; the one closest to ``source`` on the calibration batch becomes ``target``."""
    built: dict[str, Path] = {}
    with _quantizer_advice_muted():
        _quantize_each(source, built, target)

    def logits(path: Path) -> np.ndarray:
        return OnnxRuntimeEngine(path, "calibration", 1).run(*calibration)

    best, errors = closest_to_reference(logits(source), {scheme: logits(path) for scheme, path in built.items()})
    built[best].rename(target)
    for path in built.values():
        path.unlink(missing_ok=True)
    return {"scheme": best, "mean_abs_logit_error": errors}


def build(model_source: str, weights_sha256: str, config, variant: str, cache_dir: Path,
          calibration: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """The cached ONNX file for this model and variant ("float32" or "int8"), built when missing; int8
    needs a calibration batch (input ids, attention mask) to choose its weight scales."""
    if variant == "int8" and calibration is None:
        raise ValueError("int8 needs a calibration batch")
    key = cache_key(weights_sha256, config.to_dict(), variant)
    target = cache_dir / key / "model.onnx"
    if target.is_file():
        log.info("onnxruntime %s: cached engine %s", variant, target)
        return target
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir))
    try:
        _export(model_source, work / "exported.onnx")
        fused = _optimize(work / "exported.onnx", work / "optimized.onnx", config)
        quantization = {}
        if variant == "int8":
            quantization = {"quantization": {**QUANTIZATION, **_quantize(work / "optimized.onnx", work / "model.onnx", calibration)}}
        else:
            (work / "optimized.onnx").rename(work / "model.onnx")
        for name in ("exported.onnx", "optimized.onnx"):
            (work / name).unlink(missing_ok=True)
        (work / "engine.json").write_text(json.dumps({"variant": variant, "fused": fused, **_versions(), **quantization},
                                                 indent=2))
        try:
            os.rename(work, cache_dir / key)  # atomic: a concurrent builder either wins or finds it built
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("onnxruntime %s: exported and optimised in %.1fs (fused: %s) -> %s", variant,
             time.perf_counter() - started, fused, target)
    return target


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    device = "cpu"

    def __init__(self, path: Path, dtype: str, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads sleep instead of spinning: between batches the cores belong to the
        # event loop and to the callers on the same machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.dtype = dtype
        self.path = path
        # exported with segment ids (a model that reads text pairs): plain batches feed zeros
        self.takes_token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray | None = None) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_types:
            feed["token_type_ids"] = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        (logits,) = self.session.run(None, feed)
        return logits.astype(np.float32, copy=False)


def load(model_source: str, weights_sha256: str, config, variant: str, cache_dir: Path, threads: int,
         calibration: tuple[np.ndarray, np.ndarray] | None = None) -> OnnxRuntimeEngine:
    """Build (or find in the cache) and open the engine; ``EngineUnavailable`` when it cannot be had."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"onnxruntime is not installed ({exc})") from exc
    try:
        path = build(model_source, weights_sha256, config, variant, cache_dir, calibration)
        return OnnxRuntimeEngine(path, variant, threads)
    except Exception as exc:  # export and optimisation fail in many library-specific ways
        raise EngineUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
