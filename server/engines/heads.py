"""The three kinds of sequence-classification head, and what turns a head's logits into an answer.

Hugging Face records the kind in the config's ``problem_type``; older configs leave it unset, and then
(as ``*ForSequenceClassification`` does when it picks a loss) one output means regression and several
mean single-label classification. Softmax is right only for the last:

- ``single_label_classification``: softmax over the labels; the most probable label wins.
- ``multi_label_classification``: an independent sigmoid per label (they need not sum to 1); every
  label at or above a threshold is predicted, and the one with the highest sigmoid is still reported
  as ``label`` / ``class_id`` so that single-label callers keep working.
- ``regression``: the raw output is the answer (``score``); there are no probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from server.errors import ModelLoadError

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)
DEFAULT_THRESHOLD = 0.5


def problem_type(config) -> str:
    """The head's kind from a transformers config (``problem_type``, else inferred from ``num_labels``)."""
    declared = getattr(config, "problem_type", None)
    kind = declared if declared in PROBLEM_TYPES else (REGRESSION if config.num_labels == 1 else SINGLE_LABEL)
    if kind == REGRESSION and config.num_labels != 1:
        raise ModelLoadError(f"a regression head with {config.num_labels} outputs is not supported (one value only)")
    return kind


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow warnings for large |logits|


def outputs(kind: str, logits: np.ndarray) -> np.ndarray:
    """What a head means, row by row: probabilities (softmax or sigmoid), or raw values for regression.
    Long texts read in windows are combined in this space (see ``server.core.chunking``)."""
    if kind == SINGLE_LABEL:
        return softmax(logits)
    if kind == MULTI_LABEL:
        return sigmoid(logits)
    return np.asarray(logits, dtype=np.float32)


@dataclass(frozen=True)
class Decision:
    class_id: int
    probabilities: Sequence[float] | None  # None for regression
    predicted: list[int] | None  # multi-label: every class at or above the threshold
    score: float | None  # regression: the raw value


def decide(kind: str, row: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> Decision:
    """The answer for one text from its ``outputs`` row (plain floats: it runs on the event loop once per
    text, where numpy's per-call overhead on a row of three costs more than the arithmetic)."""
    if kind == REGRESSION:
        return Decision(class_id=0, probabilities=None, predicted=None, score=float(row[0]))
    best = max(range(len(row)), key=row.__getitem__)  # the first of equal maxima, as numpy's argmax
    predicted = [i for i, p in enumerate(row) if p >= threshold] if kind == MULTI_LABEL else None
    return Decision(class_id=best, probabilities=row, predicted=predicted, score=None)
