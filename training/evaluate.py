"""Accuracy, macro-F1, per-class precision/recall and the confusion matrix of a model on labelled texts (and text
pairs: rows with a second segment are encoded as the server encodes ``text_pair``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.data import Example, read_labelled_file


def classification_metrics(true: list[str], predicted: list[str], labels: list[str]) -> dict:
    """Metrics over ``labels`` (the rows and columns of the confusion matrix, in that order)."""
    index = {name: i for i, name in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        confusion[index[t], index[p]] += 1
    per_class = {}
    for i, name in enumerate(labels):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(confusion[i, :].sum()),
        }
    present = [name for name in labels if per_class[name]["support"]]
    return {
        "examples": len(true),
        "accuracy": round(float(np.trace(confusion) / max(1, confusion.sum())), 4),
        "macro_f1": round(float(np.mean([per_class[n]["f1"] for n in present])) if present else 0.0, 4),
        "labels": labels,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def pair_logits(classifier, texts: list[str], pairs: list[str | None], batch_size: int = 64) -> np.ndarray:
    """``predict_logits`` for texts with second segments (None: a text without one), through the server's own
    pair encoding (``Tokenizer.encode_pairs``: cut longest-first, token_type_ids where the model reads them)."""
    encodings = classifier.tokenizer.encode_pairs(texts, pairs)
    order = sorted(range(len(texts)), key=lambda i: encodings[i].num_tokens)
    out = np.zeros((len(texts), len(classifier.labels)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out[chunk] = classifier.forward([encodings[i] for i in chunk])
    return out


def predict(classifier, texts: list[str], only_labels: list[str] | None = None,
            pairs: list[str | None] | None = None) -> list[str]:
    """Predicted label names; with ``only_labels``, the arg-max among those classes alone; ``pairs``: each text's
    second segment (None: none)."""
    if pairs is not None and any(pair is not None for pair in pairs):
        logits = pair_logits(classifier, texts, pairs)
    else:
        logits = classifier.predict_logits(texts)
    columns = [classifier.labels.index(n) for n in only_labels] if only_labels else list(range(len(classifier.labels)))
    best = logits[:, columns].argmax(axis=1)
    return [classifier.labels[columns[i]] for i in best]


def evaluate_model(model_dir: str | Path, examples: list[Example], *, only_labels: list[str] | None = None,
                   classifier=None) -> dict:
    """Evaluate a model directory; labels in the file must be the model's label names (or class ids). Examples
    with a ``text_pair`` (``training.train.PairedExample``) are read as text pairs."""
    if classifier is None:
        from server.core.classifier import SequenceClassifier

        classifier = SequenceClassifier(str(model_dir), device="auto", dtype="float32")
    names = classifier.labels
    true = [names[int(e.label)] if e.label.isdigit() and e.label not in names else e.label for e in examples]
    unknown = set(true) - set(names)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not the model's labels {names}")
    pairs = [getattr(e, "text_pair", None) for e in examples]
    predicted = predict(classifier, [e.text for e in examples], only_labels, pairs)
    return classification_metrics(true, predicted, only_labels or names)


def format_report(metrics: dict) -> str:
    """A plain-text table: per-class precision/recall/F1, then the confusion matrix."""
    labels = metrics["labels"]
    width = max(9, *(len(n) for n in labels))
    lines = [
        f"examples {metrics['examples']}   accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}",
        "",
        f"{'class':<{width}} precision  recall     f1  support",
    ]
    for name in labels:
        c = metrics["per_class"][name]
        lines.append(f"{name:<{width}} {c['precision']:>9.4f} {c['recall']:>7.4f} {c['f1']:>6.4f} {c['support']:>8}")
    lines += ["", "confusion (rows: true, columns: predicted)", " " * width + "".join(f"{n[:9]:>10}" for n in labels)]
    for name, row in zip(labels, metrics["confusion"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>10}" for v in row))
    return "\n".join(lines)


class EvaluateSettings(BaseSettings):
    """Evaluate a model directory on a labelled CSV/JSONL file."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_EVAL_", cli_kebab_case=True, cli_prog_name="sentiment-evaluate")

    model: str = Field(description="Model directory (or hub id) to evaluate.")
    data_file: Path = Field(description="Labelled data (.csv or .jsonl with text and label).")
    output_json: Path | None = Field(None, description="Where to write the metrics as JSON.")
    only_labels: list[str] | None = Field(None, description="Restrict predictions to these labels (e.g. negative positive for binary data).")
    pair_field: str | None = Field(
        None, description="Column with each row's second segment, read as a text pair as the server reads "
                          "text_pair (blank, null or absent: that row is a single text). Default: none.")


def main(argv: list[str] | None = None) -> None:
    settings = EvaluateSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    if settings.pair_field:
        from training.train import read_paired_file

        examples = read_paired_file(settings.data_file, settings.pair_field)
    else:
        examples = read_labelled_file(settings.data_file)
    metrics = evaluate_model(settings.model, examples, only_labels=settings.only_labels)
    print(format_report(metrics))
    if settings.output_json:
        settings.output_json.write_text(json.dumps(metrics, indent=2))
        print(f"wrote {settings.output_json}")


if __name__ == "__main__":
    main()
