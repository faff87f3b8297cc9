"""Reading labelled text files (CSV or JSONL with ``text`` and ``label`` columns)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class Example:
    """A labelled text. ``candidates`` narrows what the label was chosen from: a binary corpus says
    negative-or-positive and nothing about neutral, so training compares only those classes."""

    text: str
    label: str
    candidates: tuple[str, ...] | None = None
    weight: float = 1.0  # how much the example counts in the loss (e.g. annotator agreement)
    domain: str | None = None  # where a written-corpus row comes from (leave-one-domain-out drops by it)
    # A teacher model's probabilities over the labels, in the labels' order (distillation: TrainOptions.distill_weight)
    teacher: tuple[float, ...] | None = None


def read_labelled_file(path: str | Path, text_field: str = "text", label_field: str = "label") -> list[Example]:
    """Read ``path`` (``.csv`` or ``.jsonl``/``.json``) into examples; labels are kept as strings."""
    path = Path(path)
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
        rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    else:
        handle = path.open(encoding="utf-8", errors="replace", newline="")
        rows = csv.DictReader(handle)
    examples = []
    for number, row in enumerate(rows, start=1):
        if text_field not in row or label_field not in row:
            raise ValueError(f"{path}: row {number} lacks the {text_field!r} or {label_field!r} field")
        text = str(row[text_field]).strip()
        if text:
            examples.append(Example(text=text, label=str(row[label_field]).strip()))
    if not examples:
        raise ValueError(f"{path}: no labelled rows")
    return examples


def label_names(examples: list[Example]) -> list[str]:
    """Class order for a data set: numeric labels in numeric order, other labels sorted by name."""
    names = {example.label for example in examples}
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)
