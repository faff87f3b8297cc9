"""A served model: a checkpoint loaded safely, its tokenizer, and the engine chosen for it, behind one
object that the inference core, the training code's evaluation and the benchmarks all use."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from server.core.tokenizing import Tokenizer
from server.engines.loading import load_checkpoint
from server.engines import reads_token_types
from server.engines.quantization import CALIBRATION_TEXTS
from server.engines.runner import Encoding, ModelRunner
from server.engines.select import EngineChoice, select_engine
from server.hardware import resolve_device

log = logging.getLogger(__name__)


class SequenceClassifier:
    """A tokenizer and a model in eval mode, with the engine, device and dtype they run at."""

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", engine: str = "torch",
                 max_tokens: int | None = None, max_batch_size: int = 32, recheck_margin: float | None = None,
                 name: str | None = None):
        """``name``: what the model is called in answers (default: ``source``); ``recheck_margin``: int8's
        close calls run again in float32 under this margin of logits (None: measured on calibration
        sentences, 0: never; ``server.engines.recheck``)."""
        started = time.perf_counter()
        checkpoint = load_checkpoint(source, max_tokens)
        log.info("loaded %s: %s, labels %s, %d tokens at most (%.1fs)", name or source, checkpoint.problem_type,
                 ", ".join(checkpoint.labels), checkpoint.max_tokens, time.perf_counter() - started)
        self.source = source
        self.name = name or source
        self.labels = checkpoint.labels
        self.problem_type = checkpoint.problem_type  # single-label, multi-label or regression (server.engines.heads)
        self.max_tokens = checkpoint.max_tokens
        self.weights_sha256 = checkpoint.weights_sha256
        self.device = resolve_device(device)
        # a model with segment embeddings reads a text pair's token_type_ids (``Tokenizer.encode_pairs``)
        self.tokenizer = Tokenizer(checkpoint.tokenizer, checkpoint.max_tokens,
                                   segments=reads_token_types(checkpoint.config))
        calibration = ModelRunner.pad(self.tokenizer.encode(list(CALIBRATION_TEXTS)), self.tokenizer.pad_token_id)
        self.engine = select_engine(checkpoint, EngineChoice(engine=engine, dtype=dtype, device=self.device,
                                                             max_batch_size=max_batch_size,
                                                             recheck_margin=recheck_margin), calibration)
        self.runner = ModelRunner(self.engine, self.tokenizer.pad_token_id, self.problem_type, max_batch_size)
        # the torch module (explanations and offline tools use it whichever engine serves)
        self.model: torch.nn.Module = self.engine.model if self.engine.model is not None else checkpoint.model
        log.info("engine: %s", self.engine.describe())

    @property
    def device_name(self) -> str:
        return self.engine.device

    @property
    def dtype_name(self) -> str:
        return self.engine.dtype

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def encode(self, texts: list[str], *, truncate: bool = True) -> list[Encoding]:
        return self.tokenizer.encode(texts, truncate=truncate)

    def forward(self, encodings: list[Encoding]) -> np.ndarray:
        """Logits (float32, shape [len(encodings), num_labels]) for a padded batch."""
        return self.runner.logits(encodings)

    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Offline helper (evaluation, benchmarks): logits for many texts, batched by sorted length."""
        encodings = self.encode(texts)
        order = sorted(range(len(texts)), key=lambda i: encodings[i].num_tokens)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.forward([encodings[i] for i in chunk])
        return out
