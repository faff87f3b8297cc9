"""Leave-one-out by corpus and by written domain: the budget arithmetic, folds never train on what they
test, the command runs end to end, and recipe trials (tiny model, small synthetic corpora)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.builtin import Recipe, Splits, training_mix
from training.data import Example
from training.leave_one_out import (domain_fold_recipe, fold_recipe, format_loco_report, held_out_examples,
                                    leave_one_out, main, recipe_with, scaled_counts)

BINARY = ("negative", "positive")
LABELS = ["negative", "neutral", "positive"]


def _written(prefix: str, domain: str, count: int) -> list[Example]:
    return [Example(f"{prefix} {domain} {i} {['bad', 'the', 'good'][i % 3]}", LABELS[i % 3], domain=domain)
            for i in range(count)]


def _synthetic_splits() -> Splits:
    tweets = [Example(f"tweet {i} {'good' if i % 3 == 2 else 'bad' if i % 3 == 0 else 'the'}", LABELS[i % 3])
              for i in range(60)]
    rotten = [Example(f"film {i} {'great' if i % 2 else 'awful'}", BINARY[i % 2], candidates=BINARY) for i in range(40)]
    imdb = [Example(f"movie {i} {'love' if i % 2 else 'hate'} it", BINARY[i % 2], candidates=BINARY) for i in range(40)]
    written_train = _written("wrote", "products", 20) + _written("wrote", "travel", 20)
    written_held = _written("held", "products", 6) + _written("held", "travel", 6)
    return Splits(train={"tweets": tweets[:48], "rotten_tomatoes": rotten[:30], "imdb": imdb[:30], "written": written_train},
                  held_out={"tweets": tweets[48:], "rotten_tomatoes": rotten[30:], "imdb": imdb[30:],
                            "written": written_held})


TINY_RECIPE = Recipe(train_tweets=40, train_rotten_tomatoes=30, train_imdb=10, train_written=40, max_length=16,
                     batch_size=8, eval_imdb=6, distill_weight=0.0, train_transfer=0)  # no teacher for made-up rows


def test_scaled_counts_keep_proportions_and_sum_to_the_budget():
    assert scaled_counts({"rt": 7000, "imdb": 2000}, 300) == {"rt": 233, "imdb": 67}
    assert scaled_counts({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}  # ties: by name
    assert scaled_counts({"a": 5, "b": 3}, 100) == {"a": 5, "b": 3}  # fits: unchanged
    assert scaled_counts({"a": 5, "b": 3}, None) == {"a": 5, "b": 3}
    for budget in (1, 7, 299, 1000):
        assert sum(scaled_counts({"a": 24000, "b": 7000, "c": 2000}, budget).values()) == budget


def test_a_fold_drops_its_corpus_and_scales_the_others():
    splits = _synthetic_splits()
    fold = fold_recipe(TINY_RECIPE, splits, "tweets", train_budget=20)
    assert (fold.train_tweets, fold.train_rotten_tomatoes, fold.train_imdb, fold.train_written) == (0, 7, 3, 10)
    assert fold.learning_rate == TINY_RECIPE.learning_rate  # everything else is the recipe's
    # counts are capped by the rows there are before scaling (30 RT rows, not the recipe's 7000)
    capped = fold_recipe(Recipe(train_written=100), splits, "imdb", train_budget=None)
    assert (capped.train_tweets, capped.train_rotten_tomatoes, capped.train_imdb, capped.train_written) == (48, 30, 0, 40)
    for corpus, texts in (("tweets", "tweet"), ("rotten_tomatoes", "film"), ("imdb", "movie"), ("written", "wrote")):
        mix = training_mix(splits, fold_recipe(TINY_RECIPE, splits, corpus))
        assert mix and not any(e.text.startswith(texts + " ") for e in mix)
    with pytest.raises(ValueError, match="unknown corpus"):
        fold_recipe(TINY_RECIPE, splits, "news")
    with pytest.raises(ValueError, match="trains on nothing"):
        fold_recipe(Recipe(train_rotten_tomatoes=0, train_imdb=0, train_written=0), splits, "tweets")


def test_a_domain_fold_trains_on_no_written_row_of_its_domain():
    splits = _synthetic_splits()
    fold = domain_fold_recipe(TINY_RECIPE, splits, "products", train_budget=None)
    assert fold.exclude_domains == ("products",) and fold.train_written == 20  # travel's 20 rows only
    mix = training_mix(splits, fold)
    written = [e for e in mix if e.domain]
    assert written and {e.domain for e in written} == {"travel"}
    with pytest.raises(ValueError, match="unknown domain"):
        domain_fold_recipe(TINY_RECIPE, splits, "gardening")


def test_written_rows_count_by_their_weight_and_repeats():
    splits = _synthetic_splits()
    mix = training_mix(splits, dataclasses.replace(TINY_RECIPE, written_weight=2.0, written_repeats=2))
    written = [e for e in mix if e.domain]
    assert len(written) == 80 and {e.weight for e in written} == {2.0}


def test_test_sets_are_the_held_out_rows_capped_by_the_budget():
    splits = _synthetic_splits()
    assert held_out_examples(splits, TINY_RECIPE, "tweets") == splits.held_out["tweets"]
    assert held_out_examples(splits, TINY_RECIPE, "imdb") == splits.held_out["imdb"][:6]  # the card's eval_imdb
    assert held_out_examples(splits, TINY_RECIPE, "rotten_tomatoes", eval_budget=4) == splits.held_out["rotten_tomatoes"][:4]
    travel = held_out_examples(splits, TINY_RECIPE, "written", domain="travel")
    assert len(travel) == 6 and {e.domain for e in travel} == {"travel"}


def test_recipe_overrides_come_from_json_and_unknown_fields_are_refused():
    assert recipe_with('{"epochs": 1.5, "train_imdb": 0}') == Recipe(epochs=1.5, train_imdb=0)
    assert recipe_with('{"exclude_domains": ["health"]}').exclude_domains == ("health",)
    assert recipe_with(None) == Recipe()
    with pytest.raises(ValueError, match="fields among"):
        recipe_with('{"epoch": 2}')


def test_each_fold_trains_without_what_it_tests_and_is_scored_on_it(tiny_model_dir):
    result = leave_one_out(_synthetic_splits(), TINY_RECIPE, base_model=str(tiny_model_dir), train_budget=24,
                           domains=["products"], progress=False)
    folds = result["folds"]
    assert list(folds) == ["corpus:tweets", "corpus:rotten_tomatoes", "corpus:imdb", "domain:products"]
    for name, fold in list(folds.items())[:3]:
        assert fold["train_rows_by_source"][name.split(":")[1]] == 0
        assert sum(fold["train_rows_by_source"].values()) == 24
        assert fold["train_steps"] == 3  # 24 texts, batches of 8, one epoch
        assert 0.0 <= fold["score"] <= 1.0 and set(fold["behavioural_suite"]) == {"overall", "by_capability"}
    assert folds["corpus:tweets"]["metric"] == "3-class accuracy" and folds["corpus:tweets"]["test_rows"] == 12
    assert folds["corpus:tweets"]["polarity"]["examples"] == 8  # the 12 held-out tweets less their 4 neutral ones
    assert folds["corpus:imdb"]["metric"] == "polarity accuracy" and folds["corpus:imdb"]["test_rows"] == 6
    domain = folds["domain:products"]
    assert domain["metric"] == "3-class accuracy" and domain["test_rows"] == 6
    table = format_loco_report(result)
    assert "| corpus:tweets | rotten_tomatoes 9, imdb 3, written 12 | 3 | 12 |" in table


def test_a_recipe_without_written_rows_trains_once_for_every_domain_fold(tiny_model_dir, monkeypatch):
    import training.train

    trainings = []
    fine_tune = training.train.fine_tune
    monkeypatch.setattr(training.train, "fine_tune", lambda *a, **k: trainings.append(1) or fine_tune(*a, **k))
    result = leave_one_out(_synthetic_splits(), dataclasses.replace(TINY_RECIPE, train_written=0),
                           base_model=str(tiny_model_dir), train_budget=16, corpora=[], domains=["products", "travel"],
                           suite=False, progress=False)
    assert list(result["folds"]) == ["domain:products", "domain:travel"] and len(trainings) == 1


def test_command_writes_json_for_the_chosen_folds(tmp_path, tiny_model_dir, monkeypatch, capsys):
    import training.builtin

    monkeypatch.setattr(training.builtin, "load_splits", _synthetic_splits)
    out = tmp_path / "loco.json"
    main(["--base-model", str(tiny_model_dir), "--train-budget", "16", "--eval-budget", "5", "--corpora", '["imdb"]',
          "--domains", "[]", "--recipe-json", json.dumps({"max_length": 16, "batch_size": 8}), "--no-suite",
          "--output-json", str(out)])
    result = json.loads(out.read_text())
    assert list(result["folds"]) == ["corpus:imdb"] and result["train_budget"] == 16 and result["recipe"]["batch_size"] == 8
    assert result["folds"]["corpus:imdb"]["test_rows"] == 5 and "behavioural_suite" not in result["folds"]["corpus:imdb"]
    assert "| corpus:imdb |" in capsys.readouterr().out


def test_a_recipe_trial_trains_at_its_budget_appends_its_scores_and_tabulates_them(tmp_path, tiny_model_dir, monkeypatch,
                                                                                   capsys):
    import training.recipe_trial as recipe_trial

    monkeypatch.setattr(recipe_trial, "load_splits", _synthetic_splits)
    results = tmp_path / "trials.jsonl"
    recipe = {"train_tweets": 40, "train_rotten_tomatoes": 30, "train_imdb": 10, "train_written": 0, "max_length": 16,
              "batch_size": 8, "balance_tweet_classes": True}
    for name in ("first", "second"):
        recipe_trial.main(["--name", name, "--base-model", str(tiny_model_dir), "--train-budget", "16",
                           "--eval-budget", "5", "--recipe-json", json.dumps(recipe), "--results", str(results)])
    trials = [json.loads(line) for line in results.read_text().splitlines()]
    assert [t["name"] for t in trials] == ["first", "second"]
    first = trials[0]
    assert first["train_rows_by_source"] == {"tweets": 8, "rotten_tomatoes": 6, "imdb": 2, "written": 0}  # 40:30:10
    assert first["train_steps"] == 2 and first["recipe"]["balance_tweet_classes"] is True
    assert {c: first["held_out"][c]["metric"] for c in ("tweets", "imdb", "written")} == {
        "tweets": "3-class accuracy", "imdb": "polarity accuracy", "written": "3-class accuracy"}
    assert set(first["written_by_domain"]) == {"products", "travel"}
    assert 0.0 <= first["suite_overall"] <= 1.0 and "irony" in first["suite_by_capability"]
    # same seed, same budget: the same scores
    assert {k: v for k, v in first.items() if k not in ("name", "seconds", "train_seconds")} == \
        {k: v for k, v in trials[1].items() if k not in ("name", "seconds", "train_seconds")}
    capsys.readouterr()
    recipe_trial.main(["--results", str(results)])
    table = capsys.readouterr().out.splitlines()
    # the changes column is against recipe v3 (the recipe before the written corpus), whatever the defaults are now:
    # the trial starts from Recipe() (v4, no probe), so the probe's absence is a change from v3
    assert table[2].startswith("| first | train_tweets=40, train_rotten_tomatoes=30, train_imdb=10, max_length=16, "
                               "batch_size=8, probe_epochs=0.0 | 16 |")
    assert len(table) == 4 and {line.count("|") for line in table} == {18}


def test_polar_reviews_train_reviews_over_all_three_classes_and_leave_the_others_alone():
    splits = _synthetic_splits()
    default = training_mix(splits, TINY_RECIPE)
    polar = training_mix(splits, dataclasses.replace(TINY_RECIPE, polar_reviews=True))
    assert [e.text for e in default] == [e.text for e in polar]  # the same rows in the same order
    reviews = [e for e in polar if e.text.startswith(("film", "movie"))]
    assert reviews and all(e.candidates is None for e in reviews)
    assert all(e.candidates == BINARY for e in default if e.text.startswith(("film", "movie")))
    assert [e for e in polar if e.text.startswith(("tweet", "wrote"))] == [e for e in default if e.text.startswith(("tweet", "wrote"))]
