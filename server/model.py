"""Loading a Hugging Face sequence classifier safely, and running padded batches through it."""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from server.errors import InvalidInput, ModelLoadError
from server.hardware import dtype_candidates, device_name, dtype_name, resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoding:
    """One text's token ids (special tokens included, already cut to the model's limit)."""

    input_ids: list[int]
    truncated: bool

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)


def _check_safe_weights(source: str) -> None:
    path = Path(source)
    if not path.is_dir():
        return  # a hub id: from_pretrained(use_safetensors=True) refuses pickle-only repos itself
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        found = f" (found only {', '.join(pickles)})" if pickles else ""
        raise ModelLoadError(
            f"{source} has no .safetensors weights{found}; pickle checkpoints can run arbitrary code and are "
            "refused. Convert it with: model.save_pretrained(dir, safe_serialization=True)"
        )


def weights_sha256(model: torch.nn.Module) -> str:
    """A content hash of the weights as loaded (name, dtype, shape, bytes), independent of file layout."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of the Linear layers (weights int8, activations quantized per batch)."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@torch.inference_mode()
def _seconds_per_batch(model: torch.nn.Module, device: torch.device, repeats: int = 3) -> float:
    token = min(1000, model.config.vocab_size - 1)
    ids = torch.full((8, min(64, model.config.max_position_embeddings)), token, dtype=torch.long, device=device)
    mask = torch.ones_like(ids)
    model(input_ids=ids, attention_mask=mask)  # warm-up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        timings.append(time.perf_counter() - started)
    return min(timings)


def fastest_variant(model: torch.nn.Module, device: torch.device, dtypes: list[torch.dtype]):
    """The model at the first of ``dtypes`` or, given several, at whichever runs a batch fastest here."""
    if len(dtypes) == 1:
        return model.to(device=device, dtype=dtypes[0]), dtypes[0]
    timed = {}
    for dtype in dtypes:
        variant = copy.deepcopy(model).to(device=device, dtype=dtype)
        timed[dtype] = (_seconds_per_batch(variant, device), variant)
    best = min(timed, key=lambda d: timed[d][0])
    log.info("dtype auto: %s", ", ".join(f"{dtype_name(d)} {t * 1000:.1f} ms/batch" for d, (t, _) in timed.items()))
    return timed[best][1], best


class SequenceClassifier:
    """A tokenizer and a model in eval mode, with the device and dtype they run at."""

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", max_tokens: int | None = None):
        _check_safe_weights(source)
        self.source = source
        self.device = resolve_device(device)
        if dtype == "int8" and self.device.type != "cpu":
            raise ModelLoadError("--dtype int8 (dynamic quantization) runs on the CPU only")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=False)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load a sequence classifier from {source!r}: {exc}") from exc
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"{source!r} has no fast (Rust) tokenizer")
        self.weights_sha256 = weights_sha256(model)
        model.eval()
        if dtype == "int8":
            self.model, self.dtype = quantize_int8(model), "int8"
        else:
            self.model, self.dtype = fastest_variant(model, self.device, dtype_candidates(dtype, self.device))
        config = model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        limit = min(self.tokenizer.model_max_length, config.max_position_embeddings)
        self.max_tokens = min(limit, max_tokens) if max_tokens else limit
        self.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.name = getattr(config, "_name_or_path", None) or source

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    @property
    def dtype_name(self) -> str:
        return self.dtype if isinstance(self.dtype, str) else dtype_name(self.dtype)

    def encode(self, texts: list[str], *, truncate: bool = True) -> list[Encoding]:
        """Tokenize in one call; cut texts over the limit (keeping the closing special token) or refuse them."""
        encodings = []
        for index, ids in enumerate(self.tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]):
            too_long = len(ids) > self.max_tokens
            if too_long and not truncate:
                raise InvalidInput(
                    f"text {index} has {len(ids)} tokens; the model takes at most {self.max_tokens} "
                    "(send truncation=TRUNCATE to cut it instead)",
                    field=f"texts[{index}]",
                )
            if too_long:
                ids = ids[: self.max_tokens - 1] + ids[-1:]
            encodings.append(Encoding(input_ids=ids, truncated=too_long))
        return encodings

    @torch.inference_mode()
    def forward(self, encodings: list[Encoding]) -> np.ndarray:
        """Logits (float32, shape [len(encodings), num_labels]) for a padded batch."""
        width = max(e.num_tokens for e in encodings)
        input_ids = torch.full((len(encodings), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for row, encoding in enumerate(encodings):
            input_ids[row, : encoding.num_tokens] = torch.tensor(encoding.input_ids)
            attention_mask[row, : encoding.num_tokens] = 1
        logits = self.model(
            input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
        ).logits
        return logits.float().cpu().numpy()

    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Offline helper (evaluation, benchmarks): logits for many texts, batched by sorted length."""
        encodings = self.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: encodings[i].num_tokens)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.forward([encodings[i] for i in chunk])
        return out
