"""int8 for speed, float32 for the close calls: an engine that runs a batch in int8 and runs again, in
float32, only the texts whose int8 answer is close enough to another answer that quantization could
have changed it.

Dynamic int8 is about twice as fast as float32 on CPUs with int8 dot-product instructions (VNNI), but
on the built-in model it changes 1.4% of held-out labels (per-channel scales, the better scheme), all
of them near-ties: quantization moves a logit by a few hundredths, and the label flips only where two
labels were that close. So the label of a text whose int8 logits leave a clear gap cannot have changed,
and a text without that gap is asked again at full precision. How big a gap counts as clear is measured,
not assumed: the calibration sentences run through both engines when the engine is built, and the
margin is ``RECHECK_FACTOR`` times the mean error quantization made on the gap between two labels'
logits. On the built-in model (4,329 held-out texts, ``python -m bench.precision``) that re-checks
about a tenth of the texts and changes 0.02-0.05% of labels instead of 1.4%.

What counts as "another answer" depends on the head (``server.engines.heads``): for single-label heads the
runner-up label (the gap between the top two logits); for multi-label heads also each label's distance
from the default threshold (0.5, a logit of 0); a regression head has no labels to flip, so it is never
re-checked (and int8 is not offered to it automatically).
"""

from __future__ import annotations

import threading

import numpy as np

from server.engines import heads
from server.engines import Engine

# The margin is this many times the mean error on a gap measured on the calibration sentences. On the
# built-in model the largest held-out error is about 6.6 times the mean and the 99th percentile 3.6
# times; a flip needs both a large error and a gap smaller than it, so 3x left 1 held-out label of
# 4,329 changed, at 10% of texts re-checked (4x: none, at 13%).
RECHECK_FACTOR = 3.0


def decision_margins(logits: np.ndarray, problem_type: str) -> np.ndarray:
    """How far each row's answer is from a different answer, in logits (inf: it cannot change)."""
    logits = np.asarray(logits, dtype=np.float32)
    gap = np.full(len(logits), np.inf, dtype=np.float32)
    if problem_type == heads.REGRESSION:
        return gap
    if logits.shape[1] > 1:
        top_two = np.partition(logits, -2, axis=1)[:, -2:]
        gap = top_two[:, 1] - top_two[:, 0]
    if problem_type == heads.MULTI_LABEL:
        gap = np.minimum(gap, np.abs(logits).min(axis=1))  # a label crossing the default threshold
    return gap


def decision_errors(fast: np.ndarray, exact: np.ndarray, problem_type: str) -> np.ndarray:
    """Per row, the most quantization moved anything a decision reads: the gap between any two labels'
    logits, and for multi-label heads each logit itself."""
    fast, exact = np.asarray(fast, dtype=np.float64), np.asarray(exact, dtype=np.float64)
    gaps = lambda x: x[:, :, None] - x[:, None, :]  # noqa: E731
    errors = np.abs(gaps(fast) - gaps(exact)).max(axis=(1, 2))
    if problem_type == heads.MULTI_LABEL:
        errors = np.maximum(errors, np.abs(fast - exact).max(axis=1))
    return errors


def measured_margin(fast: np.ndarray, exact: np.ndarray, problem_type: str) -> float:
    """``RECHECK_FACTOR`` times the mean decision error of ``fast`` against ``exact`` on the same inputs."""
    return float(RECHECK_FACTOR * decision_errors(fast, exact, problem_type).mean())


class RecheckedEngine(Engine):
    """Runs every batch on ``fast``; rows whose decision margin is under ``margin`` run again on ``exact``
    (trimmed to their own longest length) and their logits replace the fast ones. It is an engine like
    any other: the batcher learns its cost per batch, re-checks included."""

    def __init__(self, fast: Engine, exact: Engine, margin: float, problem_type: str):
        self.fast, self.exact = fast, exact
        self.margin = float(margin)
        self.problem_type = problem_type
        self.name, self.dtype, self.device = fast.name, fast.dtype, fast.device
        self.model = fast.model  # torch's: explanations and offline tools read it (None for ONNX Runtime)
        self.expected_fraction = 0.0  # the share of texts auto's timing counts twice (set by the builder)
        self._lock = threading.Lock()  # run() is called from the model thread, counts read from others
        self.texts = self.rechecked = 0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray | None = None) -> np.ndarray:
        extra = () if token_type_ids is None else (token_type_ids,)
        logits = np.array(self.fast.run(input_ids, attention_mask, *extra), dtype=np.float32)
        close = np.flatnonzero(decision_margins(logits, self.problem_type) < self.margin)
        if close.size:
            width = max(1, int(attention_mask[close].sum(axis=1).max()))  # right-padded: drop what is all padding
            logits[close] = self.exact.run(*(np.ascontiguousarray(a[close, :width])
                                             for a in (input_ids, attention_mask, *extra)))
        with self._lock:
            self.texts += len(input_ids)
            self.rechecked += int(close.size)
        return logits

    def counts(self) -> tuple[int, int]:
        """(texts run, texts re-checked) so far."""
        with self._lock:
            return self.texts, self.rechecked

    def describe(self) -> str:
        return f"{self.fast.key}, re-checked on {self.exact.key} under a margin of {self.margin:.3f}"


def rechecked_among(engine: Engine) -> RecheckedEngine | None:
    """The re-checked int8 engine among those that serve (alone or on a route), if any."""
    return next((route.engine for route in engine.routes if isinstance(route.engine, RecheckedEngine)), None)
