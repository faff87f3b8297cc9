"""Loading a Hugging Face sequence classifier safely, and running padded batches through it."""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from server.builtin_model import cache_root
from server.engines import describe
from server.engines.quantization import CALIBRATION_TEXTS
from server.engines.select import engine_for, select_engine
from server.errors import InvalidInput, ModelLoadError
from server.hardware import resolve_device
from server.engines.heads import problem_type

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


class SequenceClassifier:
    """A tokenizer and a model in eval mode, with the device and dtype they run at."""

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", engine: str = "torch",
                 max_tokens: int | None = None, max_batch_size: int = 32, recheck_margin: float | None = None):
        """``recheck_margin``: int8's close calls run again in float32 under this margin of logits (None:
        measured on calibration sentences, 0: never; ``server.engines.recheck``)."""
        _check_safe_weights(source)
        self.source = source
        self.device = resolve_device(device)
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
        config = model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        self.problem_type = problem_type(config)  # single-label, multi-label or regression (server.engines.heads)
        limit = min(self.tokenizer.model_max_length, config.max_position_embeddings)
        self.max_tokens = min(limit, max_tokens) if max_tokens else limit
        self.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.name = getattr(config, "_name_or_path", None) or source
        # the Rust tokenizer itself, without transformers' per-call Python layer (the request path's
        # biggest cost after the transport); cut and padded by us, so neither is set on it
        self._fast_tokenizer = copy.deepcopy(self.tokenizer.backend_tokenizer)
        self._fast_tokenizer.no_truncation()
        self._fast_tokenizer.no_padding()
        # without character offsets where the library offers it (what the batch needs is the ids)
        self._encode_batch = getattr(self._fast_tokenizer, "encode_batch_fast", self._fast_tokenizer.encode_batch)
        self.engine = select_engine(
            requested=engine, model=model, source=source, weights_sha256=self.weights_sha256, device=self.device,
            dtype=dtype, cache_dir=cache_root() / "engines", threads=torch.get_num_threads(),
            timing_token=min(1000, config.vocab_size - 1), max_batch_size=max_batch_size,
            calibration=self.padded(self.encode(list(CALIBRATION_TEXTS))), problem_type=self.problem_type,
            recheck_margin=recheck_margin,
        )
        # the torch module (explanations and offline tools use it whichever engine serves)
        self.model = getattr(self.engine, "model", model)
        log.info("engine: %s", self.engine.describe() if hasattr(self.engine, "describe") else describe(self.engine))

    @property
    def device_name(self) -> str:
        return self.engine.device

    @property
    def dtype_name(self) -> str:
        return self.engine.dtype

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def engine_for(self, batch_size: int):
        """The engine that runs a batch of this many texts (one, unless auto routed by batch size)."""
        return engine_for(self.engine, batch_size)

    def encode(self, texts: list[str], *, truncate: bool = True) -> list[Encoding]:
        """Tokenize in one call; cut texts over the limit (keeping the closing special token) or refuse them."""
        encodings = []
        for index, encoded in enumerate(self._encode_batch(list(texts), add_special_tokens=True)):
            ids = encoded.ids
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

    def padded(self, encodings: list[Encoding]) -> tuple[np.ndarray, np.ndarray]:
        """Input ids and attention mask of a batch, padded to its longest text."""
        width = max(e.num_tokens for e in encodings)
        input_ids = np.full((len(encodings), width), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, : encoding.num_tokens] = encoding.input_ids
            attention_mask[row, : encoding.num_tokens] = 1
        return input_ids, attention_mask

    def forward(self, encodings: list[Encoding]) -> np.ndarray:
        """Logits (float32, shape [len(encodings), num_labels]) for a padded batch."""
        return self.engine.run(*self.padded(encodings))

    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Offline helper (evaluation, benchmarks): logits for many texts, batched by sorted length."""
        encodings = self.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: encodings[i].num_tokens)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.forward([encodings[i] for i in chunk])
        return out
