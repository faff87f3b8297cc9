"""What the client returns: plain dataclasses, converted once from the protobuf messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sentiment.v1 import sentiment_pb2 as pb

TRUNCATION = {"truncate": pb.TRUNCATION_TRUNCATE, "reject": pb.TRUNCATION_REJECT}


@dataclass(frozen=True)
class Prediction:
    label: str
    class_id: int
    scores: dict[str, float]
    num_tokens: int
    truncated: bool
    logits: list[float] | None = None

    @classmethod
    def from_message(cls, message: pb.Prediction) -> "Prediction":
        return cls(
            label=message.label,
            class_id=message.class_id,
            scores={s.label: s.probability for s in message.scores},
            num_tokens=message.num_tokens,
            truncated=message.truncated,
            logits=list(message.logits) or None,
        )

    def to_dict(self) -> dict:
        """The REST shape: the seed's ``predicted_class`` first, then everything else."""
        out = {"predicted_class": self.class_id, "label": self.label, "scores": self.scores,
               "num_tokens": self.num_tokens, "truncated": self.truncated}
        if self.logits is not None:
            out["logits"] = self.logits
        return out


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
        )

    def to_dict(self) -> dict:
        return asdict(self)


def options_message(truncation: str = "truncate", return_logits: bool = False) -> pb.PredictOptions:
    if truncation not in TRUNCATION:
        raise ValueError(f"truncation must be one of {sorted(TRUNCATION)}, not {truncation!r}")
    return pb.PredictOptions(truncation=TRUNCATION[truncation], return_logits=return_logits)


def stream_result(message: pb.StreamPredictResponse) -> StreamResult:
    import grpc

    if message.HasField("error"):
        code = next((c.name for c in grpc.StatusCode if c.value[0] == message.error.code), "UNKNOWN")
        return StreamResult(id=message.id, error_code=code, error_message=message.error.message)
    return StreamResult(id=message.id, prediction=Prediction.from_message(message.prediction))
