"""What the batcher hands the model: encodings in, each row's logits and the head's outputs out.

The runner pads a batch, runs it on the engine that serves its size, and turns the logits into the head's
outputs (softmax, sigmoid or raw values: ``server.engines.heads``) once per batch, on the model thread, as
plain floats: so the answer to each call needs no numpy on the event loop, where a dozen numpy calls on a
row of three cost about 0.1 ms of CPU a call under load (measured with a model that only sleeps). It also
names the engine of each batch size (``key``), by a table made once, since the batcher asks on every
admission and every candidate batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from server.engines import Engine
from server.engines import heads

Row = tuple[list[float], list[float]]  # (logits, outputs) of one text


@dataclass(frozen=True)
class Encoding:
    """One text's token ids (special tokens included, already cut to the model's limit); a text with a second
    segment (``text_pair``) also has its segment ids, when the model reads them (None: all 0)."""

    input_ids: list[int]
    truncated: bool
    token_type_ids: list[int] | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.input_ids)


class ModelRunner:
    def __init__(self, engine: Engine, pad_token_id: int, problem_type: str, max_batch_size: int):
        self.engine = engine
        self.pad_token_id = pad_token_id
        self.problem_type = problem_type
        self._keys = [engine.engine_for(max(1, size)).key for size in range(max_batch_size + 1)]

    def key(self, batch_size: int) -> str:
        """The engine that runs a batch of this many texts, by name: the batcher learns a cost for each."""
        return self._keys[min(batch_size, len(self._keys) - 1)]

    @staticmethod
    def pad(encodings: list[Encoding], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Input ids and attention mask of a batch, padded to its longest text."""
        width = max(e.num_tokens for e in encodings)
        input_ids = np.full((len(encodings), width), pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, : encoding.num_tokens] = encoding.input_ids
            attention_mask[row, : encoding.num_tokens] = 1
        return input_ids, attention_mask

    @staticmethod
    def token_types(encodings: list[Encoding], width: int) -> np.ndarray | None:
        """Segment ids of a batch that holds a text pair (0 for padding and for texts without one); None when no
        text of the batch has any, so that plain batches run exactly as before."""
        if all(e.token_type_ids is None for e in encodings):
            return None
        token_type_ids = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            if encoding.token_type_ids is not None:
                token_type_ids[row, : encoding.num_tokens] = encoding.token_type_ids
        return token_type_ids

    def logits(self, encodings: list[Encoding]) -> np.ndarray:
        """Logits (float32, shape [len(encodings), num_labels]) of a padded batch."""
        input_ids, attention_mask = self.pad(encodings, self.pad_token_id)
        token_type_ids = self.token_types(encodings, input_ids.shape[1])
        if token_type_ids is None:
            return self.engine.run(input_ids, attention_mask)
        return self.engine.run(input_ids, attention_mask, token_type_ids)

    def run(self, encodings: list[Encoding]) -> list[Row]:
        """Each text's logits and the head's outputs, as plain floats (on the model thread)."""
        logits = self.logits(encodings)
        return list(zip(logits.tolist(), heads.outputs(self.problem_type, logits).tolist()))

    def timed(self, encodings: list[Encoding]) -> float:
        """Seconds of one forward pass of this batch, run once before to warm its shape up."""
        self.logits(encodings)
        started = time.perf_counter()
        self.logits(encodings)
        return time.perf_counter() - started
