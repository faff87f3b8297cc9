from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Truncation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRUNCATION_UNSPECIFIED: _ClassVar[Truncation]
    TRUNCATION_TRUNCATE: _ClassVar[Truncation]
    TRUNCATION_REJECT: _ClassVar[Truncation]
    TRUNCATION_CHUNK: _ClassVar[Truncation]
TRUNCATION_UNSPECIFIED: Truncation
TRUNCATION_TRUNCATE: Truncation
TRUNCATION_REJECT: Truncation
TRUNCATION_CHUNK: Truncation

class PredictOptions(_message.Message):
    __slots__ = ("truncation", "return_logits", "return_windows", "threshold", "top_k", "raw_scores")
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    RETURN_LOGITS_FIELD_NUMBER: _ClassVar[int]
    RETURN_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RAW_SCORES_FIELD_NUMBER: _ClassVar[int]
    truncation: Truncation
    return_logits: bool
    return_windows: bool
    threshold: float
    top_k: int
    raw_scores: bool
    def __init__(self, truncation: _Optional[_Union[Truncation, str]] = ..., return_logits: _Optional[bool] = ..., return_windows: _Optional[bool] = ..., threshold: _Optional[float] = ..., top_k: _Optional[int] = ..., raw_scores: _Optional[bool] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("text", "options", "model_name", "model_version", "text_pair")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    text: str
    options: PredictOptions
    model_name: str
    model_version: str
    text_pair: str
    def __init__(self, text: _Optional[str] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., text_pair: _Optional[str] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("prediction",)
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    prediction: Prediction
    def __init__(self, prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("texts", "options", "model_name", "model_version", "text_pairs")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIRS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    options: PredictOptions
    model_name: str
    model_version: str
    text_pairs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, texts: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., text_pairs: _Optional[_Iterable[str]] = ...) -> None: ...

class PredictBatchResponse(_message.Message):
    __slots__ = ("predictions",)
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class StreamPredictRequest(_message.Message):
    __slots__ = ("id", "text", "options", "model_name", "model_version", "text_pair")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    options: PredictOptions
    model_name: str
    model_version: str
    text_pair: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., text_pair: _Optional[str] = ...) -> None: ...

class StreamPredictResponse(_message.Message):
    __slots__ = ("id", "prediction", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    prediction: Prediction
    error: Error
    def __init__(self, id: _Optional[str] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "probability", "class_id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    probability: float
    class_id: int
    def __init__(self, label: _Optional[str] = ..., probability: _Optional[float] = ..., class_id: _Optional[int] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("label", "class_id", "scores", "logits", "num_tokens", "truncated", "predicted_labels", "score", "windows", "window_predictions", "top")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    NUM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_LABELS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    label: str
    class_id: int
    scores: _containers.RepeatedCompositeFieldContainer[LabelScore]
    logits: _containers.RepeatedScalarFieldContainer[float]
    num_tokens: int
    truncated: bool
    predicted_labels: _containers.RepeatedScalarFieldContainer[str]
    score: float
    windows: int
    window_predictions: _containers.RepeatedCompositeFieldContainer[WindowPrediction]
    top: _containers.RepeatedCompositeFieldContainer[LabelScore]
    def __init__(self, label: _Optional[str] = ..., class_id: _Optional[int] = ..., scores: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ..., logits: _Optional[_Iterable[float]] = ..., num_tokens: _Optional[int] = ..., truncated: _Optional[bool] = ..., predicted_labels: _Optional[_Iterable[str]] = ..., score: _Optional[float] = ..., windows: _Optional[int] = ..., window_predictions: _Optional[_Iterable[_Union[WindowPrediction, _Mapping]]] = ..., top: _Optional[_Iterable[_Union[LabelScore, _Mapping]]] = ...) -> None: ...

class WindowPrediction(_message.Message):
    __slots__ = ("start", "end", "prediction")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    prediction: Prediction
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("text", "label", "truncation", "steps", "model_name", "model_version", "text_pair")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TRUNCATION_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_PAIR_FIELD_NUMBER: _ClassVar[int]
    text: str
    label: str
    truncation: Truncation
    steps: int
    model_name: str
    model_version: str
    text_pair: str
    def __init__(self, text: _Optional[str] = ..., label: _Optional[str] = ..., truncation: _Optional[_Union[Truncation, str]] = ..., steps: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., text_pair: _Optional[str] = ...) -> None: ...

class WordAttribution(_message.Message):
    __slots__ = ("word", "start", "end", "attribution", "segment")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    word: str
    start: int
    end: int
    attribution: float
    segment: int
    def __init__(self, word: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., attribution: _Optional[float] = ..., segment: _Optional[int] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("prediction", "target", "words", "convergence_delta", "steps")
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_DELTA_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    prediction: Prediction
    target: str
    words: _containers.RepeatedCompositeFieldContainer[WordAttribution]
    convergence_delta: float
    steps: int
    def __init__(self, prediction: _Optional[_Union[Prediction, _Mapping]] = ..., target: _Optional[str] = ..., words: _Optional[_Iterable[_Union[WordAttribution, _Mapping]]] = ..., convergence_delta: _Optional[float] = ..., steps: _Optional[int] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ("model_name", "model_version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("name", "version", "state", "info", "serves_unversioned")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    SERVES_UNVERSIONED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    state: str
    info: ModelInfo
    serves_unversioned: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[str] = ..., info: _Optional[_Union[ModelInfo, _Mapping]] = ..., serves_unversioned: _Optional[bool] = ...) -> None: ...

class BatchingInfo(_message.Message):
    __slots__ = ("max_batch_size", "max_batch_tokens", "max_queue_size", "max_queue_seconds", "costs")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_batch_tokens: int
    max_queue_size: int
    max_queue_seconds: float
    costs: _containers.RepeatedCompositeFieldContainer[BatchCost]
    def __init__(self, max_batch_size: _Optional[int] = ..., max_batch_tokens: _Optional[int] = ..., max_queue_size: _Optional[int] = ..., max_queue_seconds: _Optional[float] = ..., costs: _Optional[_Iterable[_Union[BatchCost, _Mapping]]] = ...) -> None: ...

class BatchCost(_message.Message):
    __slots__ = ("engine", "fixed_seconds", "seconds_per_token", "batches", "seconds_per_token_width")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    FIXED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_TOKEN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    engine: str
    fixed_seconds: float
    seconds_per_token: float
    batches: int
    seconds_per_token_width: float
    def __init__(self, engine: _Optional[str] = ..., fixed_seconds: _Optional[float] = ..., seconds_per_token: _Optional[float] = ..., batches: _Optional[int] = ..., seconds_per_token_width: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_name", "model_source", "weights_sha256", "labels", "max_input_tokens", "device", "dtype", "batching", "server_version", "max_batch_texts", "max_text_chars", "engine", "problem_type", "long_text", "explain", "recheck", "name", "version", "estimated_memory_bytes")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TEXTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    LONG_TEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    RECHECK_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_source: str
    weights_sha256: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    max_input_tokens: int
    device: str
    dtype: str
    batching: BatchingInfo
    server_version: str
    max_batch_texts: int
    max_text_chars: int
    engine: str
    problem_type: str
    long_text: LongTextInfo
    explain: ExplainInfo
    recheck: RecheckInfo
    name: str
    version: str
    estimated_memory_bytes: int
    def __init__(self, model_name: _Optional[str] = ..., model_source: _Optional[str] = ..., weights_sha256: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., max_input_tokens: _Optional[int] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., batching: _Optional[_Union[BatchingInfo, _Mapping]] = ..., server_version: _Optional[str] = ..., max_batch_texts: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., engine: _Optional[str] = ..., problem_type: _Optional[str] = ..., long_text: _Optional[_Union[LongTextInfo, _Mapping]] = ..., explain: _Optional[_Union[ExplainInfo, _Mapping]] = ..., recheck: _Optional[_Union[RecheckInfo, _Mapping]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., estimated_memory_bytes: _Optional[int] = ...) -> None: ...

class RecheckInfo(_message.Message):
    __slots__ = ("margin", "engine", "texts", "rechecked")
    MARGIN_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    RECHECKED_FIELD_NUMBER: _ClassVar[int]
    margin: float
    engine: str
    texts: int
    rechecked: int
    def __init__(self, margin: _Optional[float] = ..., engine: _Optional[str] = ..., texts: _Optional[int] = ..., rechecked: _Optional[int] = ...) -> None: ...

class LongTextInfo(_message.Message):
    __slots__ = ("default_mode", "window_tokens", "overlap_tokens", "max_windows")
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    default_mode: str
    window_tokens: int
    overlap_tokens: int
    max_windows: int
    def __init__(self, default_mode: _Optional[str] = ..., window_tokens: _Optional[int] = ..., overlap_tokens: _Optional[int] = ..., max_windows: _Optional[int] = ...) -> None: ...

class ExplainInfo(_message.Message):
    __slots__ = ("max_concurrent", "default_steps", "max_steps")
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    max_concurrent: int
    default_steps: int
    max_steps: int
    def __init__(self, max_concurrent: _Optional[int] = ..., default_steps: _Optional[int] = ..., max_steps: _Optional[int] = ...) -> None: ...
