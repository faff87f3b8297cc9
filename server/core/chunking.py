"""Long texts read whole: overlapping windows on token boundaries, and how their answers combine.

A text is tokenized once without special tokens (``server.core.tokenizing``); windows of ``window_tokens`` (special tokens
included, so each is a complete input of the model's size) start every ``window_tokens - specials -
overlap_tokens`` tokens, and the last one ends at the text's end. Each window gets the model's own
special tokens ([CLS] ... [SEP] for BERT) and goes to the batcher as a text of its own, so batching,
admission and deadlines count the real work.

Combining: the token-weighted mean of the windows' outputs (softmax probabilities, sigmoids for a
multi-label head, raw values for regression), each window weighted by the text tokens it read (special
tokens not counted; tokens two windows share count in both). A short closing window therefore counts
for little, and a text that fits one window gets exactly its ordinary prediction. The same weights
combine the logits returned with ``return_logits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.engines.runner import Encoding


@dataclass(frozen=True)
class Window:
    """One window: its input ids (special tokens included), its span of the original text, and its
    weight (the text tokens it holds)."""

    encoding: Encoding
    start: int
    end: int
    text_tokens: int


@dataclass(frozen=True)
class WindowPlan:
    window_tokens: int  # special tokens included
    overlap_tokens: int
    max_windows: int

    @classmethod
    def for_model(cls, max_tokens: int, specials: int, window_tokens: int | None, overlap_tokens: int | None,
                  max_windows: int) -> "WindowPlan":
        """Defaults: windows of the model's size, overlapping by a quarter; both bounded to what works."""
        window = min(window_tokens or max_tokens, max_tokens)
        if window - specials < 2:
            raise ValueError(f"a window of {window} tokens leaves no room for text next to {specials} special tokens")
        overlap = window // 4 if overlap_tokens is None else overlap_tokens
        overlap = max(0, min(overlap, window - specials - 1))  # every window must move on by a token at least
        return cls(window_tokens=window, overlap_tokens=overlap, max_windows=max_windows)


def count_windows(text_tokens: int, capacity: int, stride: int) -> int:
    if text_tokens <= capacity:
        return 1
    return -(-(text_tokens - capacity) // stride) + 1


def token_weighted_mean(rows: np.ndarray, windows: list[Window]) -> np.ndarray:
    """The combined row of one text: sum_w n_w * rows[w] / sum_w n_w, n_w the window's text tokens."""
    weights = np.array([max(1, w.text_tokens) for w in windows], dtype=np.float64)
    return (np.asarray(rows, dtype=np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
