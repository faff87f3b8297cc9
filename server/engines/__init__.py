"""Inference engines behind one interface: padded numpy batches in, float32 logits out.

The batcher and the core never know which engine runs (TEI's backend trait, in Python): an engine
takes ``input_ids`` and ``attention_mask`` (int64, ``[batch, width]``) and returns logits
(float32, ``[batch, num_labels]``). ``server.engines.select`` builds the candidates for a device
and dtype, and with ``--engine auto`` times them at load and keeps the fastest for each batch size.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Engine(Protocol):
    name: str  # "torch" or "onnxruntime"
    dtype: str  # "float32", "bfloat16", "float16", "int8"
    device: str  # "cpu" or "cuda:<card>"

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def describe(engine: Engine) -> str:
    return f"{engine.name} {engine.dtype}"
