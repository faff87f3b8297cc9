"""Inference engines behind one interface: padded numpy batches in, float32 logits out.

The batcher and the core never know which engine runs (TEI's backend trait, in Python): an engine takes
``input_ids`` and ``attention_mask`` (int64, ``[batch, width]``), and ``token_type_ids`` of the same shape when a
batch holds text pairs (None: every token in segment 0), and returns logits (float32,
``[batch, num_labels]``). ``server.engines.select`` builds the candidates for a device and dtype, and with
``--engine auto`` times them at load and keeps the fastest for each batch size. ``Engine`` declares
everything its callers use, so nobody asks an engine what it has (no ``hasattr``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def reads_token_types(config) -> bool:
    """The model has segment embeddings that tell a text pair's two segments apart (BERT's type_vocab_size 2):
    engines then take ``token_type_ids`` (ONNX Runtime's export as a third input). RoBERTa-like models (one
    type) and DistilBERT have none, and read a pair by its separator tokens alone."""
    return int(getattr(config, "type_vocab_size", 0) or 0) > 1


@dataclass(frozen=True)
class Route:
    """Batches of at most ``max_size`` texts (None: any size) run on ``engine``."""

    max_size: int | None
    engine: "Engine"


class Engine:
    """What every engine is: a name, a dtype and a device; ``run``; the engines that serve each batch size
    (``routes``: itself, unless several engines share the sizes); and the torch module it runs, when it runs
    one (explanations and offline tools read it; None for ONNX Runtime)."""

    name: str  # "torch" or "onnxruntime"
    dtype: str  # "float32", "bfloat16", "float16", "int8"
    device: str  # "cpu" or "cuda:<card>"
    model = None

    @property
    def key(self) -> str:
        """The engine's name and dtype: what the batcher learns a batch cost for."""
        return f"{self.name} {self.dtype}"

    @property
    def routes(self) -> tuple[Route, ...]:
        return (Route(None, self),)

    def engine_for(self, batch_size: int) -> "Engine":
        """The engine that runs a batch of ``batch_size`` texts."""
        for route in self.routes:
            if route.max_size is None or batch_size <= route.max_size:
                return route.engine
        return self.routes[-1].engine

    def describe(self) -> str:
        return self.key

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError
