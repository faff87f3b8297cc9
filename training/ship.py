"""Shipping the built-in model: a compact float16 copy of a float32 build, checked against it.

The repository carries the built model (``server/builtin``), so that a fresh clone serves at once; the
server loads the float16 weights into float32 (``server.engines.loading``), so what it computes differs
from the build only by the weights' rounding. ``ship`` measures that on every held-out set and the
behavioural suite (labels changed, largest probability difference) and records it in the card.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from server.builtin_model import SHIPPED_DIR

CARRIED_FILES = ("evaluation.json", "README.md")


def _save_float16(built: Path, staging: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(built), use_safetensors=True, dtype=torch.float32)
    model.half().save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(built)).save_pretrained(staging)


def compare_precisions(built: Path, shipped: Path) -> dict:
    """Labels and probabilities of the float32 build against its float16 copy (served in float32), on every
    held-out set and the behavioural suite."""
    from server.core.classifier import SequenceClassifier
    from training.behavioural import load_suite
    from training.builtin import Recipe, held_out_sets, load_splits

    exact = SequenceClassifier(str(built), device="cpu", dtype="float32", engine="torch")
    compact = SequenceClassifier(str(shipped), device="cpu", dtype="float32", engine="torch")
    sets = {name: [e.text for e in examples] for name, (examples, _) in held_out_sets(load_splits(), Recipe()).items()}
    sets["behavioural suite"] = [case.text for case in load_suite()]
    report = {}
    for name, texts in sets.items():
        a, b = exact.predict_logits(texts), compact.predict_logits(texts)
        pa, pb = _softmax(a), _softmax(b)
        report[name] = {"texts": len(texts), "labels_changed": int((a.argmax(1) != b.argmax(1)).sum()),
                        "max_probability_difference": round(float(np.abs(pa - pb).max()), 6)}
    return report


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def ship(built: Path, target: Path = SHIPPED_DIR) -> dict:
    """Write the float16 copy of ``built`` (a ``make model`` build) with its card into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _save_float16(built, staging)
        comparison = compare_precisions(built, staging)
        record = json.loads((built / "evaluation.json").read_text())
        record["shipped_float16"] = comparison
        (staging / "evaluation.json").write_text(json.dumps(record, indent=2) + "\n")
        from training.builtin import write_card

        write_card(staging, record)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return comparison
