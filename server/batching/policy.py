"""Every knob and constant of batching and admission, in one object.

Four are the server's flags (``--max-batch-size``, ``--max-batch-tokens``, ``--max-queue-seconds``, and
through them the derived queue size); the rest are constants chosen by measurement, documented here and
in the README's "Constants" table, so that no file of the batcher hides a number of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int = 32
    """Most texts in one forward pass (``--max-batch-size``)."""
    max_batch_tokens: int = 8192
    """Most padded tokens (longest text x texts) in one forward pass (``--max-batch-tokens``)."""
    max_queue_seconds: float | None = 1.0
    """Refuse a call that would wait longer than this (``--max-queue-seconds``); None or 0: no time bound."""
    max_queue_size: int | None = None
    """Most texts waiting for the model; None: ``QUEUE_BATCHES`` batches of ``max_batch_size`` (512 by
    default). Under the time bound the queue rarely gets near it; it bounds memory before costs are known."""
    lookahead_batches: int = 4
    """How many batches' worth of queued texts the worker scans for the oldest text's length neighbours."""
    drain_smoothing: float = 0.2
    """Weight of the newest batch in the drain rate (EWMA) that prices the work queued ahead of a call."""
    cost_forgetting: float = 0.98
    """How fast old batches fade from the learned cost of a batch (exponential forgetting, per batch)."""
    prior_fixed_tokens: float = 64.0
    """Before any batch ran: a batch's fixed cost worth this many padded tokens (bert-base on a CPU ~10,
    MiniLM ~200); replaced once batches of two shapes ran."""
    batch_share_of_bound: float = 0.5
    """Under the time bound a batch may take at most this share of it by its learned cost: every text in
    and behind a batch waits for all of it."""
    model_nice: int = 5
    """How much nicer (lower priority, Linux) the model thread and its engine's pools run than the event
    loop: at 4x overload on two cores calls are then refused at once instead of waiting in gRPC core."""

    QUEUE_BATCHES = 16

    @property
    def queue_size(self) -> int:
        return self.max_queue_size or self.QUEUE_BATCHES * self.max_batch_size

    @property
    def time_bound(self) -> float | None:
        return self.max_queue_seconds or None
