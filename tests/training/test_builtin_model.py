"""The built-in model: what the repository ships (``server/builtin``) serves, reads the README's examples
right, meets its floors, was built from the recipe and data in the repository, and a rebuild from them
(``make model``; CI runs it) lands where the shipped card says."""

from __future__ import annotations

import json

import pytest

from server.builtin_model import RECIPE_VERSION, built_model_dir, builtin_model_dir, is_built

LABELS = ["negative", "neutral", "positive"]
HELD_OUT_SETS = {"tweets (3-class)", "rotten_tomatoes (binary)", "imdb (binary)", "written (3-class)"}


def shipped_record() -> dict:
    return json.loads((builtin_model_dir() / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def builtin_classifier():
    from server.core.classifier import SequenceClassifier

    return SequenceClassifier(str(builtin_model_dir()), dtype="float32")


def test_the_repository_ships_weights_labels_tokenizer_and_a_model_card(builtin_classifier):
    directory = builtin_model_dir()
    assert is_built(directory)
    assert builtin_classifier.labels == LABELS
    assert (directory / "tokenizer.json").is_file()
    card = (directory / "README.md").read_text()
    assert "VADER" in card and "held-out" in card and "float16" in card
    record = shipped_record()
    assert record["recipe_version"] == RECIPE_VERSION
    assert set(record["evaluation"]) == HELD_OUT_SETS
    # the float16 copy reads (nearly) every held-out text and suite sentence as the float32 build did
    shipped = record["shipped_float16"]
    assert set(shipped) == HELD_OUT_SETS | {"behavioural suite"}
    assert sum(r["labels_changed"] for r in shipped.values()) <= 0.002 * sum(r["texts"] for r in shipped.values())


def test_the_shipped_model_was_built_from_the_recipe_and_data_in_the_repository():
    """A change to the recipe, the seed, a corpus or the base model must ship new weights (make model, make ship)."""
    from training.builtin import Recipe, build_inputs

    assert shipped_record()["build_inputs"]["sha256"] == build_inputs(Recipe())["sha256"]


def test_make_model_rebuilds_a_cached_build_made_from_other_data_and_keeps_a_current_one(tmp_path, monkeypatch):
    """The cache outlives a pull: a build there from another recipe or corpus must not pass for the current one."""
    from training import builtin
    from training.builtin import Recipe, build_inputs

    built = []
    monkeypatch.setattr(builtin, "built_model_dir", lambda: tmp_path / "builtin")
    monkeypatch.setattr(builtin, "build", lambda target, *a, **k: built.append(target))
    cached = tmp_path / "builtin"
    cached.mkdir()
    (cached / "config.json").write_text("{}")
    (cached / "model.safetensors").write_bytes(b"")
    current = build_inputs(Recipe())["sha256"]
    for recorded, rebuilt in ((current, False), ("0" * 64, True), (None, True)):
        built.clear()
        (cached / "evaluation.json").write_text(json.dumps({"build_inputs": {"sha256": recorded}}))
        builtin.ensure_built()
        assert built == ([cached] if rebuilt else []), recorded
    built.clear()
    (cached / "evaluation.json").write_text(json.dumps({"build_inputs": {"sha256": current}}))
    builtin.ensure_built(force=True)
    assert built == [cached]


# Sentences the README shows; recipe v3 read the first two negative, v4 the third (0.62), and the distilled
# candidates without the transfer set read the first neutral (docs/model-evaluation.md).
README_EXAMPLES = {
    "The battery lasts all day.": "positive",
    "The plot was thin but the acting saved it.": "positive",
    "It charges twice as fast as my old phone.": "positive",
    "I love this": "positive",
    "good": "positive",
    "great": "positive",
    "great service": "positive",
    "awful": "negative",
    "what a waste of time": "negative",
    "the train was late again": "negative",
}


def test_the_readme_examples_read_as_the_readme_says(builtin_classifier):
    labels = [LABELS[i] for i in builtin_classifier.predict_logits(list(README_EXAMPLES)).argmax(axis=1)]
    assert dict(zip(README_EXAMPLES, labels)) == README_EXAMPLES


# Regression floors, about two points under what the shipped v5 build scores (docs/model-evaluation.md): written
# 0.858 (4,008 rows of three rounds), tweets 0.779, Rotten Tomatoes 0.825, IMDB 0.866 (first 500 by hash; 300
# here). The issue-25 targets not reached (0.85 in every written domain, tweets within 1.5 points of v3's 0.799)
# are listed in the README.
HELD_OUT_FLOORS = {"written (3-class)": 0.84, "tweets (3-class)": 0.76, "rotten_tomatoes (binary)": 0.80,
                   "imdb (binary)": 0.84}


def test_held_out_accuracy_meets_the_floors_and_beats_vader(builtin_classifier):
    from training.builtin import Recipe, held_out_sets, load_splits, vader_metrics
    from training.evaluate import evaluate_model

    sets = held_out_sets(load_splits(), Recipe(eval_imdb=300))
    for name, (examples, only) in sets.items():
        model = evaluate_model(None, examples, only_labels=only, classifier=builtin_classifier)
        vader = vader_metrics(examples, only or LABELS)
        assert model["accuracy"] >= HELD_OUT_FLOORS[name], (name, model["accuracy"])
        assert model["accuracy"] > vader["accuracy"] and model["macro_f1"] > vader["macro_f1"], name


# Floors on the behavioural suite, a few sentences under what the shipped v5 build passes (overall 0.867,
# 340/392; each capability two or three sentences under); recipe v3 (0.671) fails the overall floor and four of
# the others, v4 (0.834) the overall floor, negation (0.75) and contrast (0.89).
SUITE_FLOORS = {"overall": 0.84, "implicit_polarity": 0.75, "negation": 0.76, "contrast": 0.90, "intensifier_hedge": 0.93,
                "neutral_fact": 0.95, "comparison": 0.83, "emoji_slang": 0.78}


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


def test_the_suite_result_in_the_model_card_is_what_the_shipped_model_does(suite_report):
    """The card records the float32 build; the float16 copy passes the same sentences but for the labels the
    shipping comparison counted as changed."""
    record = shipped_record()
    changed = record["shipped_float16"]["behavioural suite"]["labels_changed"]
    assert abs(suite_report["overall"]["passed"] - record["behavioural_suite"]["overall"]["passed"]) <= changed
    if changed == 0:
        for part in ("overall", "by_capability", "by_domain"):
            assert suite_report[part] == record["behavioural_suite"][part], part


# How far a rebuild may land from the shipped card: float32 training is deterministic on one machine, but
# other CPUs' kernels (AVX2 against AVX-512) round differently and the differences grow over a thousand steps.
# On one machine a rebuild gives the card's numbers exactly (CI's rebuild on the machine that built the shipped
# model: identical); across CPUs the v3 builds moved single suite sentences and held-out rows by under a point,
# and v4 rebuilt with every kernel library held to AVX2 moved them by 0.2-0.6 points and one suite sentence
# (docs/model-evaluation.md). Another seed moves them further (IMDB up to 3.8 points): a rebuild is not one.
REBUILD_TOLERANCE = {"held_out_accuracy": 0.02, "suite_overall": 0.03}


@pytest.mark.skipif(not is_built(built_model_dir()), reason="the built-in model is not rebuilt (run `make model`)")
def test_a_rebuild_from_the_recipe_lands_where_the_shipped_card_says():
    rebuilt = json.loads((built_model_dir() / "evaluation.json").read_text())
    shipped = shipped_record()
    assert rebuilt["build_inputs"]["sha256"] == shipped["build_inputs"]["sha256"], (
        f"the cached build in {built_model_dir()} was made from another recipe or corpus: `make model` rebuilds it")
    for name in HELD_OUT_SETS:
        ours, theirs = (r["evaluation"][name]["model"]["accuracy"] for r in (rebuilt, shipped))
        assert abs(ours - theirs) <= REBUILD_TOLERANCE["held_out_accuracy"], (name, ours, theirs)
    ours, theirs = (r["behavioural_suite"]["overall"]["pass_rate"] for r in (rebuilt, shipped))
    assert abs(ours - theirs) <= REBUILD_TOLERANCE["suite_overall"], (ours, theirs)
