"""What the client returns: plain dataclasses, converted once from the protobuf messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sentiment.v1 import sentiment_pb2 as pb

TRUNCATION = {"truncate": pb.TRUNCATION_TRUNCATE, "reject": pb.TRUNCATION_REJECT, "chunk": pb.TRUNCATION_CHUNK}


@dataclass(frozen=True)
class LabelScore:
    """One label of ``Prediction.top``: its score (a probability, or the logit with ``raw_scores``) and class index."""

    label: str
    score: float
    class_id: int

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "predicted_class": self.class_id}


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    scores: dict[str, float]
    num_tokens: int
    truncated: bool
    logits: list[float] | None = None
    predicted_labels: list[str] | None = None  # multi-label models: every label at or above the threshold
    score: float | None = None  # regression models: the raw value (scores is then empty)
    windows: int | None = None  # truncation="chunk": how many windows were read
    window_predictions: list["WindowPrediction"] | None = None  # with return_windows=True
    top: list[LabelScore] | None = None  # with top_k: the best labels, best first

    @classmethod
    def from_message(cls, message: pb.Prediction) -> "Prediction":
        return cls(
            label=message.label,
            class_id=message.class_id,
            scores={s.label: s.probability for s in message.scores},
            num_tokens=message.num_tokens,
            truncated=message.truncated,
            logits=list(message.logits) or None,
            predicted_labels=list(message.predicted_labels) if message.predicted_labels else None,
            score=message.score if message.HasField("score") else None,
            windows=message.windows or None,
            window_predictions=[WindowPrediction.from_message(w) for w in message.window_predictions] or None,
            top=[LabelScore(t.label, t.probability, t.class_id) for t in message.top] or None,
        )

    def to_dict(self) -> dict:
        """The REST shape: the seed's ``predicted_class`` first, then everything else; the fields of other
        heads and of chunked reading only where they apply."""
        out = {"predicted_class": self.class_id, "label": self.label, "scores": self.scores,
               "num_tokens": self.num_tokens, "truncated": self.truncated}
        if self.logits is not None:
            out["logits"] = self.logits
        if self.predicted_labels is not None:
            out["predicted_labels"] = self.predicted_labels
        if self.score is not None:
            out["score"] = self.score
        if self.windows is not None:
            out["windows"] = self.windows
        if self.window_predictions is not None:
            out["window_predictions"] = [w.to_dict() for w in self.window_predictions]
        if self.top is not None:
            out["top"] = [t.to_dict() for t in self.top]
        return out


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a chunked text: its span ``text[start:end]`` and its own prediction."""

    start: int
    end: int
    prediction: Prediction

    @classmethod
    def from_message(cls, message: pb.WindowPrediction) -> "WindowPrediction":
        return cls(start=message.start, end=message.end, prediction=Prediction.from_message(message.prediction))

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, **self.prediction.to_dict()}


@dataclass(frozen=True)
class WordAttribution:
    word: str
    start: int  # text[start:end] == word (text_pair[start:end] for a word of the pair)
    end: int
    attribution: float  # > 0: towards the target label
    segment: int = 0  # 0: a word of the text, 1: of its text_pair


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    target: str
    words: list[WordAttribution]
    convergence_delta: float
    steps: int

    @classmethod
    def from_message(cls, message: pb.ExplainResponse) -> "Explanation":
        return cls(
            prediction=Prediction.from_message(message.prediction), target=message.target,
            words=[WordAttribution(word=w.word, start=w.start, end=w.end, attribution=w.attribution,
                                   segment=w.segment) for w in message.words],
            convergence_delta=message.convergence_delta, steps=message.steps,
        )

    def to_dict(self) -> dict:
        """The REST shape of ``POST /explain``; each word says its ``segment`` when the text had a pair."""
        paired = any(w.segment for w in self.words)
        words = [asdict(w) if paired else {k: v for k, v in asdict(w).items() if k != "segment"} for w in self.words]
        return {"label": self.prediction.label, "target": self.target, "scores": self.prediction.scores,
                "words": words, "convergence_delta": self.convergence_delta,
                "num_tokens": self.prediction.num_tokens, "truncated": self.prediction.truncated}


@dataclass(frozen=True)
class StreamResult:
    """One answer on a stream: a prediction, or the error for that item (``error_code`` is a gRPC code name)."""

    id: str
    prediction: Prediction | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class BatchCost:
    """What a batch costs on one engine, as the server learned it: fixed_seconds + seconds_per_token x padded
    tokens + seconds_per_token_width x padded tokens x width."""

    engine: str
    fixed_seconds: float
    seconds_per_token: float
    seconds_per_token_width: float
    batches: int


@dataclass(frozen=True)
class Recheck:
    """int8 served with its close calls run again in float32: texts within ``margin`` logits of another
    answer run on ``engine``; ``texts`` run and ``rechecked`` so far."""

    margin: float
    engine: str
    texts: int
    rechecked: int


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    model_source: str
    weights_sha256: str
    labels: list[str]
    max_input_tokens: int
    device: str
    dtype: str
    max_batch_size: int
    max_batch_tokens: int
    max_queue_size: int
    max_queue_seconds: float
    max_batch_texts: int
    max_text_chars: int
    server_version: str
    engine: str = ""
    batch_costs: list[BatchCost] = field(default_factory=list)
    problem_type: str = "single_label_classification"  # or multi_label_classification, regression
    long_text: str = "truncate"  # what an unspecified truncation does: truncate, chunk or reject
    window_tokens: int = 0  # truncation="chunk": window size (special tokens included), overlap, most windows
    overlap_tokens: int = 0
    max_windows: int = 0
    max_concurrent_explanations: int = 0  # 0: Explain is off
    explain_steps: int = 0
    max_explain_steps: int = 0
    recheck: Recheck | None = None  # set when int8 serves with the float32 re-check
    name: str = ""  # what requests call the model (model_name) and this version (model_version)
    version: str = ""
    estimated_memory_bytes: int = 0  # what the server estimated the version needs, before loading it

    @classmethod
    def from_message(cls, m: pb.ModelInfo) -> "ModelInfo":
        return cls(
            model_name=m.model_name, model_source=m.model_source, weights_sha256=m.weights_sha256,
            labels=list(m.labels), max_input_tokens=m.max_input_tokens, device=m.device, dtype=m.dtype,
            max_batch_size=m.batching.max_batch_size, max_batch_tokens=m.batching.max_batch_tokens,
            max_queue_size=m.batching.max_queue_size, max_queue_seconds=m.batching.max_queue_seconds,
            max_batch_texts=m.max_batch_texts,
            max_text_chars=m.max_text_chars, server_version=m.server_version, engine=m.engine,
            batch_costs=[BatchCost(engine=c.engine, fixed_seconds=c.fixed_seconds, seconds_per_token=c.seconds_per_token,
                                   seconds_per_token_width=c.seconds_per_token_width, batches=c.batches)
                         for c in m.batching.costs],
            problem_type=m.problem_type,
            long_text=m.long_text.default_mode, window_tokens=m.long_text.window_tokens,
            overlap_tokens=m.long_text.overlap_tokens, max_windows=m.long_text.max_windows,
            max_concurrent_explanations=m.explain.max_concurrent, explain_steps=m.explain.default_steps,
            max_explain_steps=m.explain.max_steps,
            recheck=Recheck(margin=m.recheck.margin, engine=m.recheck.engine, texts=m.recheck.texts,
                            rechecked=m.recheck.rechecked) if m.HasField("recheck") else None,
            name=m.name, version=m.version, estimated_memory_bytes=m.estimated_memory_bytes,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelVersion:
    """One loaded model version (``list_models``): READY, or UNLOADING while the calls it admitted finish;
    ``unversioned``: it answers the model's requests that name no version."""

    name: str
    version: str
    state: str
    unversioned: bool
    info: ModelInfo

    @classmethod
    def from_message(cls, m: pb.ModelVersion) -> "ModelVersion":
        return cls(name=m.name, version=m.version, state=m.state, unversioned=m.serves_unversioned,
                   info=ModelInfo.from_message(m.info))

    def to_dict(self) -> dict:
        return asdict(self)


def truncation_value(truncation: str | None) -> int:
    """None: TRUNCATION_UNSPECIFIED, i.e. whatever the server's --long-text says."""
    if truncation is None:
        return pb.TRUNCATION_UNSPECIFIED
    if truncation not in TRUNCATION:
        raise ValueError(f"truncation must be one of {sorted(TRUNCATION)}, not {truncation!r}")
    return TRUNCATION[truncation]


@dataclass(frozen=True)
class PredictOptions:
    """What a predict call asks besides its texts (hashable: the bridge shares a call among requests whose
    options are equal). ``truncation``: "truncate", "reject", "chunk" or None (the server's default);
    ``return_windows``: with "chunk", each window's prediction too; ``threshold``: multi-label models predict
    every label at or above it (None: the server's 0.5); ``model`` and ``model_version``: which model answers
    (None: the server's default model, and the version its policy serves); ``top_k``: also the best k labels,
    best first (``Prediction.top``; None or 0: none); ``raw_scores``: scores carry the logits (TEI's)."""

    truncation: str | None = None
    return_logits: bool = False
    return_windows: bool = False
    threshold: float | None = None
    model: str | None = None
    model_version: str | None = None
    top_k: int | None = None
    raw_scores: bool = False

    def target(self) -> dict:
        """The request fields that name the model: ``PredictRequest(text=..., **options.target())``."""
        return {"model_name": self.model or "", "model_version": self.model_version or ""}

    def message(self) -> pb.PredictOptions:
        return pb.PredictOptions(truncation=truncation_value(self.truncation), return_logits=self.return_logits,
                                 return_windows=self.return_windows, threshold=self.threshold,
                                 top_k=self.top_k or 0, raw_scores=self.raw_scores)


def call_options(options: PredictOptions | None, truncation: str | None = None, return_logits: bool = False,
                 return_windows: bool = False, threshold: float | None = None, model: str | None = None,
                 model_version: str | None = None, top_k: int | None = None,
                 raw_scores: bool = False) -> PredictOptions:
    """``options`` when a caller holds them, else the keyword arguments it gave."""
    return options or PredictOptions(truncation, return_logits, return_windows, threshold, model, model_version,
                                     top_k, raw_scores)


def explain_request(text: str, label: str | None = None, truncation: str | None = None,
                    steps: int | None = None, model: str | None = None,
                    model_version: str | None = None, text_pair: str | None = None) -> pb.ExplainRequest:
    return pb.ExplainRequest(text=text, label=label or "", truncation=truncation_value(truncation), steps=steps or 0,
                             model_name=model or "", model_version=model_version or "", text_pair=text_pair or "")


def is_pair(value) -> bool:
    """Whether ``value`` can be sent as a text pair: a string that is not blank (sentiment.v1 reads an empty pair
    as none, and the server refuses a blank one)."""
    return isinstance(value, str) and bool(value.strip())


def text_pairs_field(text_pairs: list[str | None] | None) -> list[str]:
    """``text_pairs`` as PredictBatchRequest carries them: none, or one per text (None or "" for a text without
    one: proto3 has no null in a list, so both mean none). A count that does not match is the server's to refuse."""
    return [] if text_pairs is None else [p or "" for p in text_pairs]


def stream_result(message: pb.StreamPredictResponse) -> StreamResult:
    import grpc

    if message.HasField("error"):
        code = next((c.name for c in grpc.StatusCode if c.value[0] == message.error.code), "UNKNOWN")
        return StreamResult(id=message.id, error_code=code, error_message=message.error.message)
    return StreamResult(id=message.id, prediction=Prediction.from_message(message.prediction))
