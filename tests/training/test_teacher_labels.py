"""The teacher's soft labels (``training/data/teacher``), committed for the next recipe and read by none yet: each
row is one probability distribution over the three labels, and together they are the teacher's reading of
exactly the training rows of the candidate they were made for (v4's recipe over all three rounds of writing,
seed 13), so a recipe that distils them finds every row it trains on."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from training.data import Example
from training.written import text_hash

SOFT_LABELS = Path(__file__).resolve().parents[2] / "training" / "data" / "teacher" / "soft-labels.jsonl"


def _key(text: str) -> str:
    """The file's key: the held-out rule's hash of the normalised text (its first 8 bytes), in hex."""
    return f"{text_hash(text):016x}"


def _rows() -> list[dict]:
    return [json.loads(line) for line in SOFT_LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_each_row_is_a_distribution_over_the_three_labels_under_a_unique_sorted_key():
    rows = _rows()
    keys = [row["key"] for row in rows]
    assert keys == sorted(set(keys))
    assert all(len(key) == 16 and int(key, 16) >= 0 for key in keys)
    assert all(len(row["probs"]) == 3 and min(row["probs"]) >= 0 and math.isclose(sum(row["probs"]), 1, abs_tol=2e-3)
               for row in rows)


def test_the_soft_labels_are_the_teachers_reading_of_exactly_the_candidates_training_rows():
    from training.builtin import Recipe, load_splits, training_mix
    from training.written import LATER_ROUNDS, load_written, split_written

    splits = load_splits()
    for path in LATER_ROUNDS:
        rows, _ = split_written(load_written(path))
        splits.train["written"] += [Example(r.text, r.label, domain=r.domain) for r in rows]
    candidate = dataclasses.replace(Recipe(), train_written=sum(1 for _ in splits.train["written"]))
    mix = training_mix(splits, candidate)
    assert {_key(e.text) for e in mix} == {row["key"] for row in _rows()}
    # and the teacher mostly agrees with the labels it was trained on (a file of another model's guesses would not)
    probs = {row["key"]: row["probs"] for row in _rows()}
    labels = ["negative", "neutral", "positive"]
    written = [e for e in mix if e.domain]
    agree = sum(max(range(3), key=probs[_key(e.text)].__getitem__) == labels.index(e.label) for e in written)
    assert agree / len(written) > 0.95
