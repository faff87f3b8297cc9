"""Dynamic int8: which weight scales serve a model, one per weight tensor or one per output channel, is
measured when the engine is built, not assumed.

Neither wins everywhere. On the built-in model (ONNX Runtime, AVX2) one scale per output channel changes
1.8% of held-out labels against 4.4% with one per tensor, at the same speed; on the tests' tiny random
model it is the other way round (logits off by 1.7 against 0.2). So each scheme is built, both run a
fixed set of calibration sentences, and the one whose logits stay closest to float32's (mean absolute
difference) serves; the choice and the errors are logged and, for ONNX Runtime, kept in the cache.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

SCHEMES = ("per_tensor", "per_channel")

# Varied everyday sentences (reviews, news, chat, questions; short and long) that the comparison runs.
# Written for this purpose only: none comes from the behavioural suite or the training corpora.
CALIBRATION_TEXTS = (
    "The delivery was two days late and nobody answered the phone.",
    "Great value, I would buy it again.",
    "The meeting has been moved to Thursday at 3 pm.",
    "Honestly not sure how I feel about the new update.",
    "Shares fell 4% after the company cut its forecast for the year.",
    "The staff were friendly and the room was spotless.",
    "meh. it's fine i guess",
    "Why does the app log me out every single time?",
    "Our hike took six hours and the view from the top was worth every step.",
    "The sequel keeps the humour of the first film but loses most of its heart, and the last hour drags.",
    "Battery life is shorter than advertised.",
    "Thanks so much for the quick help!!",
    "The report lists 12 recommendations for the council to consider before spring.",
    "I waited forty minutes for a cold pizza.",
    "It works exactly as described and setup took five minutes.",
    "The interface is clean, although some settings are hard to find and the manual is no help at all.",
)


def closest_to_reference(reference: np.ndarray, outputs: dict[str, np.ndarray]) -> tuple[str, dict[str, float]]:
    """The scheme whose logits differ least from the reference (mean absolute difference), and every error."""
    errors = {name: float(np.abs(np.asarray(out, dtype=np.float32) - reference).mean()) for name, out in outputs.items()}
    best = min(errors, key=errors.get)
    log.info("int8 weight scales: %s (mean |logit - float32| %s)", best,
             ", ".join(f"{name} {error:.4f}" for name, error in errors.items()))
    return best, errors
