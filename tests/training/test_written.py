"""The written corpus as committed: its rows are sound, balanced, deduplicated, free of templates and of the
behavioural suite, double-labelled, with a fixed held-out part per domain."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from training.behavioural import load_suite
from training.near_duplicates import near_copies, near_duplicate_pairs
from training.written import CORPUS, DOMAINS, HELD_OUT_PERCENT, LATER_ROUNDS, WRITTEN_DIR, load_written, split_written


@pytest.fixture(scope="module")
def rows():
    return load_written()


def test_the_corpus_is_large_and_covers_every_domain_with_three_balanced_labels(rows):
    assert len(rows) >= 10_000
    by_domain = Counter(r.domain for r in rows)
    assert set(by_domain) == set(DOMAINS)
    for domain in DOMAINS:
        labels = Counter(r.label for r in rows if r.domain == domain)
        shares = {label: count / by_domain[domain] for label, count in labels.items()}
        assert set(shares) == {"negative", "neutral", "positive"}
        assert all(0.30 <= share <= 0.36 for share in shares.values()), (domain, shares)


def test_every_writer_had_a_brief_and_every_style_length_and_difficulty_is_there(rows):
    writers = {r.writer for r in rows}
    assert len(writers) >= 8
    for writer in writers:
        assert (WRITTEN_DIR / "briefs" / f"writer-{writer[1:]}.md").is_file(), writer
    assert (WRITTEN_DIR / "briefs" / "common.md").is_file() and (WRITTEN_DIR / "briefs" / "relabel.md").is_file()
    lengths = [len(r.text.split()) for r in rows]
    assert min(lengths) <= 3 and sum(n > 60 for n in lengths) >= 200  # from titles to paragraphs
    phenomena = Counter(p for r in rows for p in r.phenomena)
    for hard in ("implicit", "negation", "double_negation", "contrast", "comparison", "hedge", "mixed", "sarcasm",
                 "neutral_fact", "question"):
        assert phenomena[hard] >= 200, hard


def test_no_two_rows_are_near_duplicates_or_share_a_skeleton(rows):
    assert near_duplicate_pairs([r.text for r in rows]) == []


def test_the_near_duplicate_check_catches_a_template_with_swapped_nouns():
    texts = ["I returned the blender after two days because the motor burned out.",
             "I returned the toaster after two days because the heating element burned out.",
             "The hotel breakfast was the best part of the whole stay."]
    assert [(a, b) for a, b, _ in near_duplicate_pairs(texts)] == [(0, 1)]


def test_no_suite_sentence_nor_a_near_copy_is_in_the_corpus(rows):
    suite = [case.text for case in load_suite()]
    found = [(suite[i], rows[j].text) for i, j, _ in near_copies(suite, [r.text for r in rows])]
    assert found == []


def test_the_suite_check_catches_a_suite_sentence_carried_by_a_longer_text():
    assert near_copies(["The battery lasts all day."], ["Light and quick, and the battery lasts all week."]) != []
    assert near_copies(["The battery lasts all day."], ["The screen is dim in sunlight."]) == []


def _assert_every_row_was_read_twice(rows, audit_file: str) -> None:
    """The audit file holds every row of the round; the two readers agree (kappa >= 0.75), and a row's label is
    the writer's, or the adjudicated one where the two readings differed."""
    audit = [json.loads(line) for line in (WRITTEN_DIR / audit_file).read_text().splitlines()]
    in_corpus = {a["id"]: a for a in audit if a["in_corpus"]}
    assert set(in_corpus) == {r.id for r in rows}
    for row in rows:
        entry = in_corpus[row.id]
        assert row.label == entry.get("adjudicated", entry["writer_label"])
        assert entry["writer_label"] == entry["second_label"] or "adjudicated" in entry
    assert _kappa([(a["writer_label"], a["second_label"]) for a in audit]) >= 0.75


def test_every_row_was_read_twice_and_the_readers_agree(rows):
    _assert_every_row_was_read_twice(rows, "audit.jsonl")
    after = [json.loads(line) for line in (WRITTEN_DIR / "audit-after-fixes.jsonl").read_text().splitlines()]
    assert len(after) >= 1000 and _kappa([(a["corpus_label"], a["third_label"]) for a in after]) >= 0.75


def _kappa(pairs: list[tuple[str, str]]) -> float:
    total = len(pairs)
    observed = sum(a == b for a, b in pairs) / total
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / total / total
    return (observed - expected) / (1 - expected)


def test_the_held_out_part_is_a_fixed_fifth_of_every_domain_and_never_trained_on(rows):
    train, held = split_written(rows)
    assert {r.id for r in train}.isdisjoint(r.id for r in held)
    assert len(train) + len(held) == len(rows)
    for domain in DOMAINS:
        share = sum(r.domain == domain for r in held) / sum(r.domain == domain for r in rows)
        assert abs(share - HELD_OUT_PERCENT / 100) < 0.05, (domain, share)
    assert split_written(list(reversed(rows)))[1] == held  # by the text's hash, not by order


@pytest.mark.parametrize("later", LATER_ROUNDS, ids=lambda path: path.stem)
def test_a_later_round_is_balanced_audited_and_copies_no_earlier_round_nor_the_suite(rows, later):
    earlier = list(rows) + [r for name in LATER_ROUNDS[:LATER_ROUNDS.index(later)] for r in load_written(name)]
    round_rows = load_written(later)
    assert len(round_rows) >= 2000 and not {r.id for r in round_rows} & {r.id for r in earlier}
    for domain in {r.domain for r in round_rows}:
        labels = Counter(r.label for r in round_rows if r.domain == domain)
        assert all(0.30 <= n / sum(labels.values()) <= 0.36 for n in labels.values()), (domain, labels)
    for writer in {r.writer for r in round_rows}:
        assert (WRITTEN_DIR / "briefs" / f"writer-{writer[1:]}.md").is_file(), writer
    assert near_duplicate_pairs([r.text for r in earlier] + [r.text for r in round_rows]) == []
    assert near_copies([case.text for case in load_suite()], [r.text for r in round_rows]) == []
    _assert_every_row_was_read_twice(round_rows, f"audit-{later.stem}.jsonl")


def test_a_bad_row_is_refused_with_its_line_number(tmp_path):
    good = json.loads(CORPUS.read_text().splitlines()[0])
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "other", "label": "great"}) + "\n")
    with pytest.raises(ValueError, match=r"corpus.jsonl:2: label 'great', duplicate text"):
        load_written(path)
