"""Leave-one-corpus-out: the budget arithmetic, the folds never train on the corpus they test, and the
command runs end to end (tiny model, small synthetic corpora)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.builtin import Recipe, Splits, training_mix
from training.data import Example
from training.leave_one_out import (fold_recipe, format_loco_report, held_out_examples, leave_one_corpus_out, main,
                                    recipe_with, scaled_counts)

BINARY = ("negative", "positive")


def _synthetic_splits() -> Splits:
    tweets = [Example(f"tweet {i} {'good' if i % 3 == 2 else 'bad' if i % 3 == 0 else 'the'}", ["negative", "neutral", "positive"][i % 3])
              for i in range(60)]
    rotten = [Example(f"film {i} {'great' if i % 2 else 'awful'}", BINARY[i % 2], candidates=BINARY) for i in range(40)]
    imdb = [Example(f"movie {i} {'love' if i % 2 else 'hate'} it", BINARY[i % 2], candidates=BINARY) for i in range(40)]
    return Splits(train={"tweets": tweets[:48], "rotten_tomatoes": rotten[:30], "imdb": imdb[:30]},
                  held_out={"tweets": tweets[48:], "rotten_tomatoes": rotten[30:], "imdb": imdb[30:]})


TINY_RECIPE = Recipe(train_tweets=40, train_rotten_tomatoes=30, train_imdb=10, max_length=16, batch_size=8, eval_imdb=6)


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
    assert (fold.train_tweets, fold.train_rotten_tomatoes, fold.train_imdb) == (0, 15, 5)
    assert fold.learning_rate == TINY_RECIPE.learning_rate  # everything else is the recipe's
    # counts are capped by the rows there are before scaling (30 RT rows, not the recipe's 7000)
    capped = fold_recipe(Recipe(), splits, "imdb", train_budget=None)
    assert (capped.train_tweets, capped.train_rotten_tomatoes, capped.train_imdb) == (48, 30, 0)
    for corpus, texts in (("tweets", "tweet"), ("rotten_tomatoes", "film"), ("imdb", "movie")):
        mix = training_mix(splits, fold_recipe(TINY_RECIPE, splits, corpus))
        assert mix and not any(e.text.startswith(texts + " ") for e in mix)
    with pytest.raises(ValueError, match="unknown corpus"):
        fold_recipe(TINY_RECIPE, splits, "news")
    with pytest.raises(ValueError, match="trains on nothing"):
        fold_recipe(Recipe(train_rotten_tomatoes=0, train_imdb=0), splits, "tweets")


def test_test_sets_are_the_held_out_rows_capped_by_the_budget():
    splits = _synthetic_splits()
    assert held_out_examples(splits, TINY_RECIPE, "tweets") == splits.held_out["tweets"]
    assert held_out_examples(splits, TINY_RECIPE, "imdb") == splits.held_out["imdb"][:6]  # the card's eval_imdb
    assert held_out_examples(splits, TINY_RECIPE, "rotten_tomatoes", eval_budget=4) == splits.held_out["rotten_tomatoes"][:4]


def test_recipe_overrides_come_from_json_and_unknown_fields_are_refused():
    assert recipe_with('{"epochs": 1.5, "train_imdb": 0}') == Recipe(epochs=1.5, train_imdb=0)
    assert recipe_with(None) == Recipe()
    with pytest.raises(ValueError, match="fields among"):
        recipe_with('{"epoch": 2}')


def test_each_fold_trains_without_its_corpus_and_is_scored_on_it(tiny_model_dir):
    result = leave_one_corpus_out(_synthetic_splits(), TINY_RECIPE, base_model=str(tiny_model_dir), train_budget=24,
                                  progress=False)
    folds = result["folds"]
    assert list(folds) == ["tweets", "rotten_tomatoes", "imdb"]
    for corpus, fold in folds.items():
        assert fold["train_rows_by_source"][corpus] == 0
        assert sum(fold["train_rows_by_source"].values()) == 24
        assert fold["train_steps"] == 3  # 24 texts, batches of 8, one epoch
        assert 0.0 <= fold["score"] <= 1.0 and set(fold["behavioural_suite"]) == {"overall", "by_capability"}
    assert folds["tweets"]["metric"] == "3-class accuracy" and folds["tweets"]["test_rows"] == 12
    assert folds["tweets"]["polarity"]["examples"] == 8  # the 12 held-out tweets less their 4 neutral ones
    assert folds["imdb"]["metric"] == "polarity accuracy" and folds["imdb"]["test_rows"] == 6
    assert folds["imdb"]["polarity"]["labels"] == ["negative", "positive"]
    table = format_loco_report(result)
    assert "| tweets | rotten_tomatoes 18, imdb 6 | 3 | 12 |" in table


def test_command_writes_json_for_the_chosen_corpora(tmp_path, tiny_model_dir, monkeypatch, capsys):
    import training.builtin

    monkeypatch.setattr(training.builtin, "load_splits", _synthetic_splits)
    out = tmp_path / "loco.json"
    main(["--base-model", str(tiny_model_dir), "--train-budget", "16", "--eval-budget", "5", "--corpora", '["imdb"]',
          "--recipe-json", json.dumps({"max_length": 16, "batch_size": 8}), "--no-suite", "--output-json", str(out)])
    result = json.loads(out.read_text())
    assert list(result["folds"]) == ["imdb"] and result["train_budget"] == 16 and result["recipe"]["batch_size"] == 8
    assert result["folds"]["imdb"]["test_rows"] == 5 and "behavioural_suite" not in result["folds"]["imdb"]
    assert "| imdb |" in capsys.readouterr().out


def test_a_recipe_trial_trains_at_its_budget_appends_its_scores_and_tabulates_them(tmp_path, tiny_model_dir, monkeypatch,
                                                                                   capsys):
    import training.recipe_trial as recipe_trial

    monkeypatch.setattr(recipe_trial, "load_splits", _synthetic_splits)
    results = tmp_path / "trials.jsonl"
    recipe = {"train_tweets": 40, "train_rotten_tomatoes": 30, "train_imdb": 10, "max_length": 16, "batch_size": 8,
              "balance_tweet_classes": True}
    for name in ("first", "second"):
        recipe_trial.main(["--name", name, "--base-model", str(tiny_model_dir), "--train-budget", "16",
                           "--eval-budget", "5", "--recipe-json", json.dumps(recipe), "--results", str(results)])
    trials = [json.loads(line) for line in results.read_text().splitlines()]
    assert [t["name"] for t in trials] == ["first", "second"]
    first = trials[0]
    assert first["train_rows_by_source"] == {"tweets": 8, "rotten_tomatoes": 6, "imdb": 2}  # 40:30:10 scaled to 16
    assert first["train_steps"] == 2 and first["recipe"]["balance_tweet_classes"] is True
    assert {c: first["held_out"][c]["metric"] for c in ("tweets", "imdb")} == {"tweets": "3-class accuracy",
                                                                              "imdb": "polarity accuracy"}
    assert 0.0 <= first["suite_overall"] <= 1.0 and "irony" in first["suite_by_capability"]
    # same seed, same budget: the same scores
    assert {k: v for k, v in first.items() if k not in ("name", "seconds", "train_seconds")} == \
        {k: v for k, v in trials[1].items() if k not in ("name", "seconds", "train_seconds")}
    capsys.readouterr()
    recipe_trial.main(["--results", str(results)])
    table = capsys.readouterr().out.splitlines()
    # the changes column is against recipe v2 (the recipe before the grid), whatever the defaults are now
    assert table[2].startswith("| first | train_tweets=40, train_rotten_tomatoes=30, train_imdb=10, max_length=16, "
                               "batch_size=8, learning_rate=0.0002, balance_tweet_classes=True, probe_epochs=0.5 | 16 |")
    assert len(table) == 4 and {line.count("|") for line in table} == {17}


def test_polar_reviews_train_reviews_over_all_three_classes_and_leave_tweets_alone():
    splits = _synthetic_splits()
    default = training_mix(splits, TINY_RECIPE)
    polar = training_mix(splits, dataclasses.replace(TINY_RECIPE, polar_reviews=True))
    assert [e.text for e in default] == [e.text for e in polar]  # the same rows in the same order
    reviews = [e for e in polar if e.text.startswith(("film", "movie"))]
    assert reviews and all(e.candidates is None for e in reviews)
    assert all(e.candidates == BINARY for e in default if e.text.startswith(("film", "movie")))
    assert [e for e in polar if e.text.startswith("tweet")] == [e for e in default if e.text.startswith("tweet")]
