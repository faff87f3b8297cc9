"""``sentiment.v1`` messages ⇄ the inference core's plain types, in one place for the servicer."""

from __future__ import annotations

from sentiment.v1 import sentiment_pb2 as pb
import dataclasses

from server.core.types import DEFAULT_OPTIONS, Explanation, ModelInfo, PredictOptions, Prediction, Truncation
from server.repository.versions import Version

# the contract's enum -> the core's truncation (unspecified: None, the server's --long-text)
TRUNCATIONS = {pb.TRUNCATION_UNSPECIFIED: None, pb.TRUNCATION_TRUNCATE: Truncation.TRUNCATE.value,
               pb.TRUNCATION_REJECT: Truncation.REJECT.value, pb.TRUNCATION_CHUNK: Truncation.CHUNK.value}


def truncation(value: int) -> str | None:
    """An enum value this server does not know is passed on as such, and refused by the core."""
    return TRUNCATIONS.get(value, f"unknown ({value})")


def pair(text_pair: str) -> list[str] | None:
    """One request's ``text_pair`` as the core takes it: proto3 cannot tell an empty string from an unset one, so
    an empty pair is no pair (None: the plain path, no extra work)."""
    return [text_pair] if text_pair else None


def pairs(text_pairs) -> list[str | None] | None:
    """``PredictBatchRequest.text_pairs``: none, or one per text (an empty one: that text has none; the core
    checks the count)."""
    return [p or None for p in text_pairs] if text_pairs else None


def options(message: pb.PredictOptions) -> PredictOptions:
    if message.ByteSize() == 0:  # nothing set, as in most calls
        return DEFAULT_OPTIONS
    return PredictOptions(
        truncation=truncation(message.truncation), return_logits=message.return_logits,
        return_windows=message.return_windows,
        threshold=message.threshold if message.HasField("threshold") else DEFAULT_OPTIONS.threshold,
        top_k=message.top_k, raw_scores=message.raw_scores,
    )


def prediction_message(prediction: Prediction) -> pb.Prediction:
    message = pb.Prediction(
        label=prediction.label,
        class_id=prediction.class_id,
        scores=[pb.LabelScore(label=k, probability=v) for k, v in prediction.scores.items()],
        num_tokens=prediction.num_tokens,
        truncated=prediction.truncated,
        score=prediction.score,
    )
    # the rest only when present: every field given to the constructor costs, set or empty
    if prediction.logits:
        message.logits.extend(prediction.logits)
    if prediction.predicted_labels:
        message.predicted_labels.extend(prediction.predicted_labels)
    if prediction.windows:
        message.windows = prediction.windows
    if prediction.top:
        message.top.extend(pb.LabelScore(label=t.label, probability=t.score, class_id=t.class_id)
                           for t in prediction.top)
    if prediction.window_predictions:
        message.window_predictions.extend(
            pb.WindowPrediction(start=w.start, end=w.end, prediction=prediction_message(w.prediction))
            for w in prediction.window_predictions)
    return message


def explanation_message(explanation: Explanation) -> pb.ExplainResponse:
    return pb.ExplainResponse(
        prediction=prediction_message(explanation.prediction), target=explanation.target,
        words=[pb.WordAttribution(word=w.word, start=w.start, end=w.end, attribution=w.attribution,
                                  segment=w.segment) for w in explanation.words],
        convergence_delta=explanation.convergence_delta, steps=explanation.steps,
    )


def version_info(version: Version) -> ModelInfo:
    """A loaded version's facts, with the name and version requests use and its memory estimate."""
    return dataclasses.replace(version.core.model_info(), name=version.name, version=version.version,
                               estimated_memory_bytes=version.estimate)


def model_version_message(version: Version, unversioned: bool) -> pb.ModelVersion:
    return pb.ModelVersion(name=version.name, version=version.version, state=version.state,
                           info=model_info_message(version_info(version)), serves_unversioned=unversioned)


def model_info_message(info: ModelInfo) -> pb.ModelInfo:
    batching, limits, explain = info.policy.batching, info.policy.limits, info.policy.explain
    return pb.ModelInfo(
        model_name=info.model_name, model_source=info.model_source, weights_sha256=info.weights_sha256,
        labels=info.labels, max_input_tokens=info.max_input_tokens, device=info.device, dtype=info.dtype,
        batching=pb.BatchingInfo(
            max_batch_size=batching.max_batch_size, max_batch_tokens=batching.max_batch_tokens,
            max_queue_size=batching.queue_size, max_queue_seconds=batching.max_queue_seconds or 0.0,
            costs=[pb.BatchCost(engine=name, fixed_seconds=c.fixed_seconds, seconds_per_token=c.seconds_per_token,
                                seconds_per_token_width=c.seconds_per_token_width, batches=c.batches)
                   for name, c in info.batch_costs.items()],
        ),
        server_version=info.server_version, max_batch_texts=limits.max_batch_texts,
        max_text_chars=limits.max_text_chars, engine=info.engine, problem_type=info.problem_type,
        long_text=pb.LongTextInfo(default_mode=Truncation(info.policy.long_text.default).value,
                                  window_tokens=info.window_tokens, overlap_tokens=info.overlap_tokens,
                                  max_windows=info.policy.long_text.max_windows),
        explain=pb.ExplainInfo(max_concurrent=explain.max_concurrent, default_steps=explain.default_steps,
                               max_steps=explain.max_steps),
        recheck=pb.RecheckInfo(margin=info.recheck.margin, engine=info.recheck.engine, texts=info.recheck.texts,
                               rechecked=info.recheck.rechecked) if info.recheck else None,
        name=info.name, version=info.version, estimated_memory_bytes=info.estimated_memory_bytes,
    )
