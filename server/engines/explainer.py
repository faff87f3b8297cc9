"""Explanations: how much each word of a text pushed the model towards a label.

Integrated Gradients (Sundararajan et al. 2017) with Captum's ``LayerIntegratedGradients`` at the
model's input (word) embeddings: the gradient of the target's logit is integrated along the straight
path from a baseline (the same text with every word piece replaced by the padding token; special
tokens, positions and token types kept) to the text. The attributions of all tokens then add up to
the target logit's difference between the text and the baseline (completeness); Captum reports how far
they miss it as ``convergence_delta``, which shrinks as ``steps`` grows. A word's attribution is the
sum over its word pieces (the fast tokenizer's ``word_ids``), so the words still add up, and its
character span comes from the tokenizer's offsets into the original text.

The explainer takes a torch model, whatever engine serves predictions, and a text the core tokenized
(``server.core.tokenizing``: ids, character offsets, word ids). It runs in
float32 (bf16 or int8 weights would make gradients too coarse for completeness to hold), on the
server's model thread, one explanation at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from server.errors import Cancelled, DeadlineExceeded


@dataclass(frozen=True)
class ExplainEncoding:
    """One text as an explanation reads it: ids (special tokens included), each token's character span,
    which tokens are special, which word each token belongs to (None for special tokens). With a second
    segment (``text_pair``): which segment each token is in (``sequence_ids``: 0, 1, None for special tokens;
    offsets are then into that segment) and the segment ids the model reads (None when it reads none)."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]
    special_tokens_mask: list[int]
    word_ids: list[int | None]
    truncated: bool
    sequence_ids: list[int | None] | None = None
    token_type_ids: list[int] | None = None


@dataclass(frozen=True)
class WordAttribution:
    word: str
    start: int  # offsets into the word's own segment: the text (segment 0) or its pair (1)
    end: int
    attribution: float
    segment: int = 0


@dataclass(frozen=True)
class Attributions:
    """What Integrated Gradients found for one text."""

    logits: np.ndarray  # the text's logits (float32, [num_labels]), as the explainer's model gives them
    target: int
    words: list[WordAttribution]
    convergence_delta: float
    steps: int
    forward_passes: int  # rows run through the model: 1 prediction + 2 (embeddings of text and baseline)
    # + steps (each with a backward pass) + 2 (the convergence delta)


class Explainer:
    def __init__(self, model: torch.nn.Module, *, pad_token_id: int, max_batch_tokens: int):
        from captum.attr import LayerIntegratedGradients  # imported here: only servers that explain pay for it

        self.model = model.eval()
        self.max_batch_tokens = max_batch_tokens
        self.device = next(model.parameters()).device
        self.pad_token_id = pad_token_id
        self._rows = 0
        self._stop_at: float | None = None
        self._cancelled = None
        self._ig = LayerIntegratedGradients(self._forward, model.get_input_embeddings())

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The logits of a batch of (interpolated) inputs; checks the deadline before every pass."""
        if self._cancelled is not None and self._cancelled.is_set():
            raise Cancelled("the caller went away")
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            raise DeadlineExceeded("the deadline passed while the explanation was running")
        self._rows += input_ids.shape[0]
        mask = attention_mask.expand(input_ids.shape[0], -1)
        if token_type_ids is None:
            return self.model(input_ids=input_ids, attention_mask=mask).logits.float()
        types = token_type_ids.expand(input_ids.shape[0], -1)
        return self.model(input_ids=input_ids, attention_mask=mask, token_type_ids=types).logits.float()

    def explain(self, text: str, encoding: ExplainEncoding, *, target: int | None, steps: int,
                stop_at: float | None = None, cancelled=None, pair: str | None = None) -> Attributions:
        """Attribute the ``target`` logit (default: the largest) of ``text`` (encoded as ``encoding``) to its
        words (and, with ``pair``, to its pair's words: segment 1).

        ``stop_at``: a ``time.monotonic()`` deadline checked before each forward pass; ``cancelled``: an
        event (``threading.Event``) that stops the work the same way."""
        self._rows, self._stop_at, self._cancelled = 0, stop_at, cancelled
        try:
            ids = torch.tensor([encoding.input_ids], device=self.device)
            mask = torch.ones_like(ids)
            special = torch.tensor([encoding.special_tokens_mask], device=self.device, dtype=torch.bool)
            baseline = torch.where(special, ids, torch.full_like(ids, self.pad_token_id))
            extra = (mask,)  # the forward's other arguments; segment ids (kept in the baseline) with a pair
            if encoding.token_type_ids is not None:
                extra = (mask, torch.tensor([encoding.token_type_ids], device=self.device))
            with torch.inference_mode():
                logits = self._forward(ids, *extra)[0].cpu().numpy()
            if target is None:
                target = int(np.argmax(logits))
            with torch.enable_grad():
                attributions, delta = self._ig.attribute(
                    inputs=ids, baselines=baseline, additional_forward_args=extra, target=target, n_steps=steps,
                    internal_batch_size=max(1, self.max_batch_tokens // ids.shape[1]),
                    return_convergence_delta=True,
                )
            per_token = attributions.sum(dim=-1)[0].detach().float().cpu().numpy()
            return Attributions(logits=logits, target=target, words=merge_words(text, encoding, per_token, pair),
                                convergence_delta=float(delta[0]), steps=steps, forward_passes=self._rows)
        finally:
            self._stop_at = self._cancelled = None


def merge_words(text: str, encoding: ExplainEncoding, per_token: np.ndarray,
                pair: str | None = None) -> list[WordAttribution]:
    """Word pieces of one word (the same ``word_id`` in the same segment) become one word: attributions summed,
    span joined. With a pair, the text's words come first (segment 0), then the pair's (segment 1), each with
    offsets into its own segment; word ids restart in each segment, as the tokenizer counts them."""
    segments = (text,) if pair is None else (text, pair)
    sequence_ids = encoding.sequence_ids or [None if w is None else 0 for w in encoding.word_ids]
    spans: dict[tuple[int, int], list] = {}
    for token, word_id in enumerate(encoding.word_ids):
        if word_id is None:
            continue  # special tokens equal the baseline: their attribution is 0
        start, end = encoding.offsets[token]
        entry = spans.setdefault((sequence_ids[token], word_id), [start, end, 0.0])
        entry[0], entry[1] = min(entry[0], start), max(entry[1], end)
        entry[2] += float(per_token[token])
    return [WordAttribution(word=segments[segment][start:end], start=start, end=end, attribution=value,
                            segment=segment)
            for (segment, _), (start, end, value) in sorted(spans.items())]


def is_float32(model: torch.nn.Module) -> bool:
    """Every parameter float32 and no quantized layer (dynamic int8 Linear layers hide their weights)."""
    return (all(p.dtype == torch.float32 for p in model.parameters())
            and not any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules()))


def float32_model(served: torch.nn.Module | None, source: str, device: torch.device) -> torch.nn.Module:
    """The torch model to explain with: the served one when it is a float32 torch module, otherwise a
    float32 copy loaded from the same safetensors weights (int8 and bf16 gradients are too coarse)."""
    if isinstance(served, torch.nn.Module) and is_float32(served):
        return served
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        source, use_safetensors=True, trust_remote_code=False, dtype=torch.float32,
    ).eval().to(device)
