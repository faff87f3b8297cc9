"""The transfer set (training.transfer): unlabelled sentences written for distillation. It must be broad and
balanced as its writers meant it, carry no near copy of anything the model is judged on (a suite sentence, a
README example, a written held-out row) nor of a written training row, and the recipe must learn each of its
sentences from the teacher alone."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from training.behavioural import load_suite
from training.near_duplicates import near_copies, near_duplicate_pairs
from training.transfer import TRANSFER, load_transfer, teacher_labelled
from training.written import ALL_ROUNDS, DOMAINS, LABELS, load_written, split_written

from .test_builtin_model import README_EXAMPLES

# The README's aspect example, which no test pins to a label (its label depends on the aspect)
README_HARD_EXAMPLES = ["The screen is great but the battery dies by noon"]


@pytest.fixture(scope="module")
def rows():
    return load_transfer()


def test_the_set_covers_every_domain_with_the_three_readings_its_writers_meant(rows):
    assert len(rows) >= 2000
    counts = Counter((r.domain, r.intended) for r in rows)
    for domain in DOMAINS:
        total = sum(counts[(domain, label)] for label in LABELS)
        assert total >= 100, domain
        assert all(counts[(domain, label)] >= 0.2 * total for label in LABELS), (domain, counts)
    lengths = [len(r.text.split()) for r in rows]
    assert sum(n <= 12 for n in lengths) >= 0.3 * len(rows) and max(lengths) >= 40  # short and long texts


def test_no_row_near_copies_another_nor_a_written_row(rows):
    texts = [r.text for r in rows]
    assert near_duplicate_pairs(texts) == []
    written = [w.text for path in ALL_ROUNDS for w in load_written(path)]
    assert [(i, j) for i, j, _ in near_duplicate_pairs(written + texts) if i < len(written) <= j] == []


def test_nothing_the_model_is_judged_on_is_in_the_set(rows):
    """Suite sentences, README examples and written held-out rows stay unseen, even as a teacher's reading."""
    texts = [r.text for r in rows]
    held_out = [w.text for path in ALL_ROUNDS for w in split_written(load_written(path))[1]]
    judged = [case.text for case in load_suite()] + list(README_EXAMPLES) + README_HARD_EXAMPLES + held_out
    assert near_copies(judged, texts) == []


def test_the_teacher_reads_the_set_mostly_as_its_writers_meant(rows):
    """The rows train on the teacher's probabilities only; a teacher far from the writers would teach noise."""
    from training.teacher import load_soft_labels

    examples = teacher_labelled(rows, load_soft_labels(), list(LABELS))
    assert [e.text for e in examples] == [r.text for r in rows]
    assert all(e.candidates is None and e.domain == r.domain for e, r in zip(examples, rows))
    agree = sum(e.label == r.intended for e, r in zip(examples, rows)) / len(rows)
    assert agree >= 0.8, agree


def test_a_transfer_row_is_labelled_by_the_teacher_and_one_it_never_read_is_an_error():
    from training.teacher import text_key
    from training.transfer import TransferRow

    row = TransferRow("Needed a recharge by lunch.", "products", "review_snippet", "t1", "negative")
    [example] = teacher_labelled([row], {text_key(row.text): (0.7, 0.2, 0.1)}, list(LABELS))
    assert (example.label, example.teacher, example.candidates) == ("negative", (0.7, 0.2, 0.1), None)
    with pytest.raises(ValueError, match="make teacher"):
        teacher_labelled([row], {}, list(LABELS))


def test_a_bad_row_is_refused_with_its_line_number(tmp_path):
    good = {"text": "Arrived on time.", "domain": "services", "style": "review_snippet", "writer": "t2",
            "intended": "positive"}
    for bad in ({**good, "domain": "gardening"}, {**good, "intended": "mixed"}, {"text": "no fields"}):
        path = tmp_path / "sentences.jsonl"
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=r"sentences\.jsonl:2"):
            load_transfer(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "text": "arrived  on TIME."}) + "\n")
    with pytest.raises(ValueError, match="duplicate text"):
        load_transfer(path)


def test_the_committed_set_is_the_one_the_recipe_reads():
    from training.builtin import Recipe, build_inputs

    recipe = Recipe()
    if recipe.train_transfer:
        assert "transfer" in build_inputs(recipe)["corpora"] and TRANSFER.is_file()
        assert recipe.train_transfer == len(load_transfer())  # the whole set: a count that drifted would drop rows
