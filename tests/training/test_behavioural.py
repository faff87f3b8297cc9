"""The behavioural suite: the file is sound, the report's arithmetic is right, the command works, and no
suite sentence is in the data the built-in recipe trains on."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from training.behavioural import (CAPABILITIES, DOMAINS, LABELS, SuiteCase, format_suite_report, load_suite, main,
                                  normalise, run_suite, suite_report)


def test_suite_covers_every_domain_and_capability_with_both_polarities():
    cases = load_suite()
    assert len(cases) >= 300
    cells = Counter((c.domain, c.capability) for c in cases)
    assert all(cells[(d, c)] >= 4 for d in DOMAINS for c in CAPABILITIES), cells
    labels = Counter(c.label for c in cases)
    assert set(labels) == set(LABELS)
    for capability in CAPABILITIES:
        present = {c.label for c in cases if c.capability == capability}
        if capability == "neutral_fact":
            assert present == {"neutral"}
        elif capability != "irony":
            assert {"negative", "positive"} <= present, capability


def test_normalise_ignores_case_whitespace_and_punctuation():
    assert normalise("  The battery lasts,\tall DAY!! ") == "the battery lasts all day"
    assert normalise("Best. Day. Ever.") == normalise("best day ever")
    assert normalise("Don’t  STOP, it's 🔥") == normalise("dont stop its 🔥") == "dont stop its 🔥"


@pytest.mark.parametrize("row, problem", [
    ({"id": "x", "text": "Fine.", "label": "good", "domain": "travel", "capability": "negation"}, "label 'good'"),
    ({"id": "x", "text": "Fine.", "label": "positive", "domain": "sports", "capability": "negation"}, "domain 'sports'"),
    ({"id": "x", "text": "Fine.", "label": "positive", "domain": "travel"}, "not a suite row"),
    ({"id": "a", "text": "the FIRST sentence", "label": "positive", "domain": "travel", "capability": "negation"}, "duplicate text"),
    ({"id": "first", "text": "Other.", "label": "positive", "domain": "travel", "capability": "negation"}, "duplicate id"),
])
def test_a_bad_suite_row_is_refused_with_its_line_number(tmp_path, row, problem):
    first = {"id": "first", "text": "The first sentence.", "label": "neutral", "domain": "travel", "capability": "neutral_fact"}
    path = tmp_path / "suite.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=rf"suite.jsonl:2: .*{problem}"):
        load_suite(path)


def _case(number, label, domain, capability):
    return SuiteCase(id=f"c{number}", text=f"sentence {number}", label=label, domain=domain, capability=capability)


def test_report_counts_pass_rates_per_capability_domain_and_label():
    cases = [
        _case(1, "positive", "travel", "negation"), _case(2, "negative", "travel", "negation"),
        _case(3, "neutral", "movies", "neutral_fact"), _case(4, "negative", "movies", "irony"),
        _case(5, "positive", "movies", "contrast"),
    ]
    predicted = ["positive", "positive", "neutral", "positive", "positive"]
    report = suite_report(cases, predicted)
    assert report["overall"] == {"passed": 3, "total": 5, "pass_rate": 0.6}
    assert report["by_capability"] == {
        "negation": {"passed": 1, "total": 2, "pass_rate": 0.5},
        "contrast": {"passed": 1, "total": 1, "pass_rate": 1.0},
        "neutral_fact": {"passed": 1, "total": 1, "pass_rate": 1.0},
        "irony": {"passed": 0, "total": 1, "pass_rate": 0.0},
    }
    assert list(report["by_capability"]) == ["negation", "contrast", "neutral_fact", "irony"]  # the suite's order
    assert report["by_domain"] == {"travel": {"passed": 1, "total": 2, "pass_rate": 0.5},
                                   "movies": {"passed": 2, "total": 3, "pass_rate": 0.6667}}
    assert report["by_expected_label"]["negative"] == {"passed": 0, "total": 2, "pass_rate": 0.0}
    assert report["by_domain_and_capability"]["movies"]["irony"]["pass_rate"] == 0.0
    # rows: expected negative, neutral, positive; columns: predicted
    assert report["confusion"]["rows_expected_columns_predicted"] == [[0, 0, 2], [0, 1, 0], [0, 0, 2]]
    assert [f["id"] for f in report["failures"]] == ["c2", "c4"]
    # irony is reported only: the shortfalls name the overall rate and negation, not irony
    assert report["targets"]["met"] is False
    assert report["targets"]["short_of"] == ["overall 0.600 < 0.85", "negation 0.500 < 0.75"]
    table = format_suite_report(report, failures=5)
    assert "| negation | negated opinions and negated problems | 1/2 | 50.0% |" in table
    assert "| irony (reported only) |" in table and "| movies | 2/3 | 66.7% |" in table
    assert "| c4 | sentence 4 | negative | positive |" in table


def test_targets_are_met_when_only_irony_falls_short():
    cases = [_case(i, "positive", "social", "contrast") for i in range(9)] + [_case(9, "negative", "social", "irony")]
    report = suite_report(cases, ["positive"] * 10)
    assert report["overall"]["pass_rate"] == 0.9
    assert report["targets"] == {"overall": 0.85, "every_capability": 0.75, "reported_only": ["irony"],
                                 "met": True, "short_of": []}


def test_report_refuses_a_prediction_count_that_does_not_match():
    with pytest.raises(ValueError, match="2 predictions for 1"):
        suite_report([_case(1, "positive", "social", "contrast")], ["positive", "negative"])


def test_suite_needs_a_three_label_model():
    class BinaryModel:
        labels = ["NEGATIVE", "POSITIVE"]

    with pytest.raises(ValueError, match="negative"):
        run_suite(BinaryModel())


def test_command_prints_tables_and_writes_every_prediction(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "suite.json"
    main(["--model", str(tiny_model_dir), "--output-json", str(out), "--failures", "3", "--device", "cpu"])
    report = json.loads(out.read_text())
    cases = load_suite()
    assert report["cases"] == len(cases) and report["overall"]["total"] == len(cases)
    assert report["overall"]["passed"] == len(cases) - len(report["failures"])
    assert sum(r["total"] for r in report["by_domain"].values()) == len(cases)
    assert sum(map(sum, report["confusion"]["rows_expected_columns_predicted"])) == len(cases)
    printed = capsys.readouterr().out
    assert all(f"| {name}" in printed for name in CAPABILITIES) and all(f"| {name} |" in printed for name in DOMAINS)


def test_command_fails_below_target_when_asked(tmp_path, tiny_model_dir):
    # a random tiny model cannot reach 85%: with --fail-below-target the command exits 1
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tiny_model_dir), "--failures", "0", "--device", "cpu", "--fail-below-target"])
    assert exit_info.value.code == 1


def _words(text: str) -> str:
    return f" {normalise(text)} "


def test_no_suite_sentence_appears_in_the_recipes_training_data():
    """Every training row of every corpus the built-in recipe draws from, the transfer set included (a superset
    of its mix, so any recipe over these corpora is covered), and the mix itself, checked for each suite sentence as a whole
    normalised word sequence, alone or inside a longer text."""
    builtin = pytest.importorskip("training.builtin")
    try:
        splits = builtin.load_splits()
    except FileNotFoundError as error:
        pytest.skip(f"training corpora not installed: {error}")
    from training.transfer import load_transfer

    mix = builtin.training_mix(splits, builtin.Recipe())
    texts = {e.text for rows in splits.train.values() for e in rows} | {row.text for row in load_transfer()}
    assert mix and {e.text for e in mix} <= texts
    haystack = "\n".join(_words(text) for text in texts)
    found = [case.text for case in load_suite() if _words(case.text) in haystack]
    assert not found, f"suite sentences found in the training data: {found}"


def test_the_built_in_model_card_shows_the_suite_tables():
    from dataclasses import asdict

    from training.builtin import Recipe, _card_sections

    report = suite_report([_case(1, "positive", "travel", "negation")], ["positive"])
    record = {"evaluation": {}, "train": {"steps": 1, "bf16": False, "seconds": 1.0}, "recipe": asdict(Recipe()),
              "seed": 13, "build_seconds": 2.0, "train_rows_by_source": {}, "behavioural_suite": report,
              "build_inputs": {"sha256": "0" * 64}}
    section = _card_sections(record)["Behavioural suite"]
    assert "never trained on" in section and "| negation | negated opinions and negated problems | 1/1 | 100.0% |" in section
