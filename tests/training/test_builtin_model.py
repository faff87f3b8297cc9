"""The built-in model: its directory serves, and its held-out accuracy meets the bar.

Marked slow: it runs where ``make model`` has built the model (CI builds it before the tests)."""

from __future__ import annotations

import json

import pytest

from server.builtin_model import builtin_model_dir, is_built

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not is_built(), reason="the built-in model is not built (run `make model`)"),
]


@pytest.fixture(scope="module")
def builtin_classifier():
    from server.core.classifier import SequenceClassifier

    return SequenceClassifier(str(builtin_model_dir()), dtype="float32")


def test_directory_has_weights_labels_tokenizer_and_a_model_card(builtin_classifier):
    directory = builtin_model_dir()
    assert builtin_classifier.labels == ["negative", "neutral", "positive"]
    assert (directory / "tokenizer.json").is_file()
    card = (directory / "README.md").read_text()
    assert "VADER" in card and "held-out" in card
    record = json.loads((directory / "evaluation.json").read_text())
    assert set(record["evaluation"]) == {"tweets (3-class)", "rotten_tomatoes (binary)", "imdb (binary)"}


def test_held_out_accuracy_meets_the_bar_and_beats_vader(builtin_classifier):
    from training.builtin import Recipe, held_out_sets, load_splits, vader_metrics
    from training.evaluate import evaluate_model

    sets = held_out_sets(load_splits(), Recipe(eval_imdb=300))
    results = {name: (evaluate_model(None, examples, only_labels=only, classifier=builtin_classifier),
                      vader_metrics(examples, only or ["negative", "neutral", "positive"]))
               for name, (examples, only) in sets.items()}
    tweets_model, tweets_vader = results["tweets (3-class)"]
    # Regression floors for the 10-minute CPU recipe (recipe v2: tweets 0.808, movies 0.839; v3: 0.799, 0.832);
    # the product bar (0.82 / 0.85) is not reached on this hardware: see the model card and README.
    assert tweets_model["accuracy"] >= 0.78
    movie_correct = sum(results[n][0]["accuracy"] * results[n][0]["examples"] for n in ("rotten_tomatoes (binary)", "imdb (binary)"))
    movie_total = sum(results[n][0]["examples"] for n in ("rotten_tomatoes (binary)", "imdb (binary)"))
    assert movie_correct / movie_total >= 0.80
    for name, (model, vader) in results.items():
        assert model["accuracy"] > vader["accuracy"], name
        assert model["macro_f1"] > vader["macro_f1"], name


# Regression floors on the behavioural suite, a few sentences below what recipe v3 passes here (overall
# 0.671, 263/392; docs/model-evaluation.md); the overall floor is above v2 (0.643), so v2's recipe fails it.
# A build on another CPU (bf16 autocast where the CPU has it) moves single sentences, hence the margin. The
# issue-11 targets (0.85 overall, 0.75 in every capability but irony) are not reached: see the docs.
SUITE_FLOORS = {"overall": 0.65, "implicit_polarity": 0.45, "negation": 0.50, "contrast": 0.70, "intensifier_hedge": 0.85,
                "neutral_fact": 0.80, "comparison": 0.45, "emoji_slang": 0.62}


@pytest.fixture(scope="module")
def suite_report(builtin_classifier):
    from training.behavioural import run_suite

    return run_suite(builtin_classifier)


def test_behavioural_suite_pass_rates_meet_the_floors(suite_report):
    from training.behavioural import format_suite_report

    print("\n" + format_suite_report(suite_report))  # shown with `pytest -s` or `-rA`
    rates = {"overall": suite_report["overall"]["pass_rate"],
             **{name: rate["pass_rate"] for name, rate in suite_report["by_capability"].items()}}
    below = {name: (rates[name], floor) for name, floor in SUITE_FLOORS.items() if rates[name] < floor}
    assert not below, f"suite pass rates below their floors (rate, floor): {below}"


def test_the_suite_result_in_the_model_card_is_what_the_model_does(suite_report):
    """Deterministic for a given build: rerunning the suite on the built model gives the recorded rates."""
    record = json.loads((builtin_model_dir() / "evaluation.json").read_text())
    if "behavioural_suite" not in record:
        pytest.skip("this build predates the behavioural suite in the model card")
    recorded = record["behavioural_suite"]
    for part in ("overall", "by_capability", "by_domain"):
        assert suite_report[part] == recorded[part], part
