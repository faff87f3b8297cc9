"""Long texts read whole: overlapping windows on token boundaries, and how their answers combine.

A text is tokenized once without special tokens; windows of ``window_tokens`` (special tokens
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

from server.errors import InvalidInput
from server.engines.loading import Encoding


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


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one text ([CLS] and [SEP] for BERT, <s> and
    </s> for RoBERTa), read off an encoded one-word text."""
    encoded = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["special_tokens_mask"]
    first = mask.index(0)
    last = len(mask) - 1 - mask[::-1].index(0)
    return ids[:first], ids[last + 1 :]


def split(tokenizer, texts: list[str], plan: WindowPlan) -> list[list[Window]]:
    """Every text's windows, in text order; a text past ``plan.max_windows`` is refused (INVALID_ARGUMENT)."""
    prefix, suffix = special_frame(tokenizer)
    capacity = plan.window_tokens - len(prefix) - len(suffix)
    stride = capacity - plan.overlap_tokens
    batch = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    result = []
    for index, (ids, offsets) in enumerate(zip(batch["input_ids"], batch["offset_mapping"])):
        count = count_windows(len(ids), capacity, stride)
        if count > plan.max_windows:
            raise InvalidInput(
                f"text {index} has {len(ids)} tokens: {count} windows of {plan.window_tokens} tokens "
                f"(overlap {plan.overlap_tokens}); the limit is {plan.max_windows} windows per text",
                field=f"texts[{index}]",
            )
        windows = []
        for number in range(count):
            first = number * stride
            content = ids[first : first + capacity]
            span = offsets[first : first + capacity]
            start, end = (span[0][0], span[-1][1]) if span else (0, 0)
            encoding = Encoding(input_ids=prefix + content + suffix, truncated=False)
            windows.append(Window(encoding=encoding, start=start, end=end, text_tokens=len(content)))
        result.append(windows)
    return result


def token_weighted_mean(rows: np.ndarray, windows: list[Window]) -> np.ndarray:
    """The combined row of one text: sum_w n_w * rows[w] / sum_w n_w, n_w the window's text tokens."""
    weights = np.array([max(1, w.text_tokens) for w in windows], dtype=np.float64)
    return (np.asarray(rows, dtype=np.float64) * weights[:, None]).sum(axis=0) / weights.sum()
