"""The core's plain-Python vocabulary: what a request asks (options, with the one truncation type and the
one rule for its default), what comes back (predictions, explanations, model facts), and the policies that
hold the core's limits. Each transport converts its messages to and from these in its own converters
module; nothing here knows a wire format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from server import __version__
from server.batching.cost import CostEstimate
from server.batching.policy import BatchPolicy
from server.engines import heads
from server.engines.explainer import WordAttribution
from server.errors import InvalidInput


class Truncation(str, Enum):
    """What happens to a text over the model's token limit."""

    TRUNCATE = "truncate"  # cut it (and say so)
    REJECT = "reject"  # refuse it (INVALID_ARGUMENT)
    CHUNK = "chunk"  # read it whole in overlapping windows


TRUNCATIONS = tuple(t.value for t in Truncation)


def resolve_truncation(asked: str | None, default: str, *, explaining: bool = False) -> Truncation:
    """The truncation a request gets: what it asked, or the server's ``--long-text`` when it said nothing,
    whatever protocol it came by. An explanation reads one window, so a server default of chunk becomes
    truncate for it, and an explanation that asks for chunk is refused."""
    if asked is None:
        mode = Truncation(default)
        return Truncation.TRUNCATE if explaining and mode is Truncation.CHUNK else mode
    try:
        mode = Truncation(asked)
    except ValueError:
        raise InvalidInput(f"truncation must be one of {', '.join(TRUNCATIONS)}", field="options.truncation") from None
    if explaining and mode is Truncation.CHUNK:
        raise InvalidInput("explanations read one window: send truncation truncate or reject", field="truncation")
    return mode


@dataclass(frozen=True)
class PredictOptions:
    truncation: str | None = None  # a Truncation value; None: the server's --long-text
    return_logits: bool = False
    return_windows: bool = False  # with "chunk": every window's own prediction too
    threshold: float = heads.DEFAULT_THRESHOLD  # multi-label heads: predict every label at or above it
    top_k: int = 0  # > 0: Prediction.top holds the best k labels (at most every label, as Triton clamps); 0: no top
    raw_scores: bool = False  # TEI's raw_scores: scores (and top) carry the logits instead of probabilities


DEFAULT_OPTIONS = PredictOptions()


@dataclass(frozen=True)
class LabelScore:
    """One label of a ranking (``Prediction.top``): its name, the value it was ranked by, its class index."""

    label: str
    score: float
    class_id: int


def ranked(labels: Sequence[str], values: Sequence[float], k: int) -> list[LabelScore]:
    """The best ``k`` labels by ``values``, best first (equal values: class order); ``k`` past the number of
    labels gives every label, as Triton's classification extension clamps its count. The one ranking rule,
    for ``Prediction.top`` and the OIP classification outputs."""
    order = sorted(range(len(values)), key=lambda i: -values[i])[:k]
    return [LabelScore(labels[i], float(values[i]), i) for i in order]


def check_top_k(k: int, field: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InvalidInput(f"top_k must be a whole number, 0 (no ranking) or more, not {k!r}", field=field)


# Text pairs: a text may come with a second segment (``text_pair``: an aspect, a hypothesis, a query), for models
# that read two (aspect-based sentiment, NLI, cross-encoders), as TEI's PredictPair. The core takes them as
# ``pairs``: None (no text has one), or one entry per text, None where that text has none. A pair is encoded with
# the tokenizer's own pair handling (``Tokenizer.encode_pairs``: token_type_ids where the model reads them), cut
# longest-first past the model's limit (``truncated`` set) or refused with reject; ``num_tokens`` counts both
# segments, and so do batching and admission. Each transport converts its own shape to this and names its own
# fields where it can tell an empty pair from none; what reaches the core is checked here, once.
PAIRS_FIELD = "text_pairs"


def check_pairs(pairs: Sequence[str | None], texts: int, max_chars: int) -> None:
    """One entry per text; every pair given is a string, not blank, and within the character limit."""
    if len(pairs) != texts:
        raise InvalidInput(f"{len(pairs)} text pairs for {texts} texts: give none, or exactly one per text",
                           field=PAIRS_FIELD)
    for index, pair in enumerate(pairs):
        if pair is None:
            continue
        where = f"{PAIRS_FIELD}[{index}]"
        if not isinstance(pair, str):
            raise InvalidInput(f"the pair of text {index} is not a string", field=where)
        if not pair.strip():
            raise InvalidInput(f"the pair of text {index} is empty: send a second segment, or none", field=where)
        if len(pair) > max_chars:
            raise InvalidInput(f"the pair of text {index} has {len(pair)} characters; the limit is {max_chars}",
                               field=where)


def check_pair_truncation(mode: Truncation) -> None:
    """A pair is read in one window: chunk (windows over one text) cannot split two segments."""
    if mode is Truncation.CHUNK:
        raise InvalidInput("truncation chunk reads one text in windows and cannot take a text pair: send truncation "
                           "truncate (cut the longer segment first) or reject", field="options.truncation")


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    scores: dict[str, float]  # softmax (single-label) or sigmoid (multi-label) per label, or with raw_scores the
    # logits; empty for regression
    logits: list[float] | None
    num_tokens: int
    truncated: bool
    predicted_labels: list[str] | None = None  # multi-label heads only
    score: float | None = None  # regression heads only
    windows: int = 0  # windows read with truncation "chunk"
    window_predictions: list["WindowPrediction"] | None = None
    top: list[LabelScore] | None = None  # with top_k: the best labels by their scores, best first


@dataclass(frozen=True)
class WindowPrediction:
    start: int  # character offsets of the window in the original text
    end: int
    prediction: Prediction


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    target: str
    words: list[WordAttribution]
    convergence_delta: float
    steps: int
    forward_passes: int


@dataclass(frozen=True)
class RecheckInfo:
    margin: float
    engine: str
    texts: int
    rechecked: int


@dataclass(frozen=True)
class RequestLimits:
    max_batch_texts: int = 64
    """Most texts in one call (``--max-batch-texts``)."""
    max_text_chars: int = 20_000
    """Most characters in one text, checked before tokenizing."""


@dataclass(frozen=True)
class LongTextPolicy:
    default: Truncation = Truncation.TRUNCATE
    """What a request that does not say gets (``--long-text``)."""
    window_tokens: int | None = None
    """Window size for chunk, special tokens included; None: the model's own limit (the built-in model:
    the length it was trained on, ``server.builtin_model.TRAINED_MAX_TOKENS``)."""
    overlap_tokens: int | None = None
    """Tokens neighbouring windows share; None: a quarter of the window."""
    max_windows: int = 32
    """Most windows one text may take; longer texts get INVALID_ARGUMENT."""


@dataclass(frozen=True)
class ExplainPolicy:
    max_concurrent: int = 2
    """Most Explain calls running or waiting at once (``--max-concurrent-explanations``); 0: Explain off."""
    default_steps: int = 50
    """Integrated Gradients steps when the request does not say."""
    max_steps: int = 300
    """Most steps a request may ask for."""


@dataclass(frozen=True)
class CorePolicy:
    """Everything the core is bounded by, derived from the settings once (``ServerSettings.core_policy``)."""

    batching: BatchPolicy = BatchPolicy()
    limits: RequestLimits = RequestLimits()
    long_text: LongTextPolicy = LongTextPolicy()
    explain: ExplainPolicy = ExplainPolicy()
    warmup: bool = True


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    model_source: str
    weights_sha256: str
    labels: list[str]
    max_input_tokens: int
    device: str
    dtype: str
    engine: str
    problem_type: str
    policy: CorePolicy
    window_tokens: int
    overlap_tokens: int
    batch_costs: dict[str, CostEstimate] = field(default_factory=dict)
    recheck: RecheckInfo | None = None
    server_version: str = __version__
    name: str = ""  # what requests call it (model_name, model_version): set by the repository layer
    version: str = ""
    estimated_memory_bytes: int = 0
