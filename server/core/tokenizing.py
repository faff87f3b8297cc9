"""Tokenizing, in one place for every way a text is read: whole (cut to the model's limit, or refused),
in overlapping windows (truncation "chunk", ``server.core.chunking``), and for an explanation (with the
character offsets and word ids that attributions are reported by).

Plain texts go through the Rust tokenizer directly, without transformers' per-call Python layer (the
request path's biggest cost after the transport); the rare windowed and explained texts through the
transformers tokenizer, which gives offsets. A text with a second segment (``text_pair``) goes through the
transformers tokenizer's own pair handling (its special tokens between and around the segments, and
``token_type_ids`` where the model reads segments), cut longest-first: a token at a time from the longer
segment, as ``truncation="longest_first"`` does.
"""

from __future__ import annotations

import copy
from server.core.chunking import Window, WindowPlan, count_windows
from server.engines.explainer import ExplainEncoding
from server.engines.runner import Encoding
from server.errors import InvalidInput


class Tokenizer:
    def __init__(self, tokenizer, max_tokens: int, *, segments: bool = False):
        """``tokenizer``: transformers' fast tokenizer of the checkpoint; ``max_tokens``: the model's limit;
        ``segments``: the model reads segment ids (``token_type_ids``), so a text pair carries them."""
        self.hf = tokenizer
        self.max_tokens = max_tokens
        self.segments = segments and "token_type_ids" in tokenizer.model_input_names
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.specials = tokenizer.num_special_tokens_to_add(pair=False)
        # the Rust tokenizer itself, cut and padded by us, so neither is set on it
        self._fast = copy.deepcopy(tokenizer.backend_tokenizer)
        self._fast.no_truncation()
        self._fast.no_padding()
        # without character offsets where the library offers it (what the batch needs is the ids)
        self._encode_batch = getattr(self._fast, "encode_batch_fast", self._fast.encode_batch)

    def encode(self, texts: list[str], *, truncate: bool = True) -> list[Encoding]:
        """Tokenize in one call; cut texts over the limit (keeping the closing special token) or refuse them."""
        encodings = []
        for index, encoded in enumerate(self._encode_batch(list(texts), add_special_tokens=True)):
            ids = encoded.ids
            too_long = len(ids) > self.max_tokens
            if too_long and not truncate:
                raise InvalidInput(
                    f"text {index} has {len(ids)} tokens; the model takes at most {self.max_tokens} "
                    "(send truncation=TRUNCATE to cut it instead)",
                    field=f"texts[{index}]",
                )
            if too_long:
                ids = ids[: self.max_tokens - 1] + ids[-1:]
            encodings.append(Encoding(input_ids=ids, truncated=too_long))
        return encodings

    def encode_pairs(self, texts: list[str], pairs: list[str | None], *, truncate: bool = True) -> list[Encoding]:
        """Texts with their second segments (None: a text without one, encoded as ``encode`` does), through the
        tokenizer's pair handling; pairs over the limit are cut longest-first (``truncated`` set) or refused."""
        encodings: list[Encoding | None] = [None] * len(texts)
        alone = [i for i, pair in enumerate(pairs) if pair is None]
        for i, encoding in zip(alone, self.encode([texts[i] for i in alone], truncate=truncate)):
            encodings[i] = encoding
        paired = [i for i, pair in enumerate(pairs) if pair is not None]
        if not paired:
            return encodings
        full = self.hf([texts[i] for i in paired], [pairs[i] for i in paired], add_special_tokens=True,
                       return_token_type_ids=self.segments, verbose=False)
        for row, index in enumerate(paired):
            ids = full["input_ids"][row]
            types = full["token_type_ids"][row] if self.segments else None
            too_long = len(ids) > self.max_tokens
            if too_long and not truncate:
                raise InvalidInput(
                    f"text {index} and its pair have {len(ids)} tokens; the model takes at most {self.max_tokens} "
                    "(send truncation=TRUNCATE to cut the longer segment first instead)", field=f"text_pairs[{index}]")
            if too_long:
                cut = self.hf(texts[index], pairs[index], add_special_tokens=True, truncation="longest_first",
                              max_length=self.max_tokens, return_token_type_ids=self.segments, verbose=False)
                ids = cut["input_ids"]
                types = cut["token_type_ids"] if self.segments else None
            encodings[index] = Encoding(input_ids=list(ids), truncated=too_long,
                                        token_type_ids=list(types) if types is not None else None)
        return encodings

    def special_frame(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after one text ([CLS] and [SEP] for BERT, <s> and
        </s> for RoBERTa), read off an encoded one-word text."""
        encoded = self.hf("a", add_special_tokens=True, return_special_tokens_mask=True)
        ids, mask = encoded["input_ids"], encoded["special_tokens_mask"]
        first = mask.index(0)
        last = len(mask) - 1 - mask[::-1].index(0)
        return ids[:first], ids[last + 1 :]

    def windows(self, texts: list[str], plan: WindowPlan) -> list[list[Window]]:
        """Every text's windows, in text order; a text past ``plan.max_windows`` is refused (INVALID_ARGUMENT)."""
        prefix, suffix = self.special_frame()
        capacity = plan.window_tokens - len(prefix) - len(suffix)
        stride = capacity - plan.overlap_tokens
        batch = self.hf(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
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

    def for_explanation(self, text: str, *, truncate: bool = True, pair: str | None = None) -> ExplainEncoding:
        """The text (and its pair) cut to the model's limit (longest-first with a pair) or refused, with offsets
        (each into its own segment), special tokens, word ids and, with a pair, segment ids."""
        segments = (text,) if pair is None else (text, pair)
        full = self.hf(*segments, add_special_tokens=True, verbose=False)
        too_long = len(full["input_ids"]) > self.max_tokens
        if too_long and not truncate:
            what, field = ("the text has", "text") if pair is None else ("the text and its pair have", "text_pair")
            raise InvalidInput(
                f"{what} {len(full['input_ids'])} tokens; the model takes at most {self.max_tokens} "
                "(send truncation=TRUNCATE to explain the tokens that fit)", field=field)
        encoded = self.hf(*segments, add_special_tokens=True, truncation="longest_first" if pair else True,
                          max_length=self.max_tokens, return_offsets_mapping=True, return_special_tokens_mask=True,
                          return_token_type_ids=self.segments and pair is not None)
        return ExplainEncoding(input_ids=list(encoded["input_ids"]), offsets=[tuple(o) for o in encoded["offset_mapping"]],
                               special_tokens_mask=list(encoded["special_tokens_mask"]), word_ids=encoded.word_ids(),
                               truncated=too_long,
                               sequence_ids=None if pair is None else encoded.sequence_ids(),
                               token_type_ids=list(encoded["token_type_ids"]) if "token_type_ids" in encoded else None)
