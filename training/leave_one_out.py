"""Leave-one-corpus-out: train the built-in recipe without one corpus, then test on that corpus.

A recipe that only fits its own corpora scores well on their held-out rows and badly on a corpus it has
never seen; this protocol measures the second (issue 11). Binary corpora (Rotten Tomatoes, IMDB) are
scored by polarity (the arg-max of negative and positive); tweets by 3-class accuracy, with polarity on
the tweets that are not neutral beside it, because without tweets no corpus teaches the neutral class.
Each fold also runs the behavioural suite. A budget caps the training texts of each fold (the recipe's
mix scaled down in proportion) and the test texts of each corpus, so that a grid of recipes can be
compared at a size the machine affords; compare recipes only at the same budget.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.builtin import BINARY, LABELS, Recipe, Splits, base_model_dir, train_options, training_mix
from training.data import Example
from training.evaluate import classification_metrics, predict

# corpus -> the Recipe field that says how many of its training rows the mix takes
CORPORA = {"tweets": "train_tweets", "rotten_tomatoes": "train_rotten_tomatoes", "imdb": "train_imdb"}


def scaled_counts(counts: dict[str, int], budget: int | None) -> dict[str, int]:
    """``counts`` scaled down in proportion so that they sum to at most ``budget`` (largest remainders
    get the leftover units); unchanged when they already fit."""
    total = sum(counts.values())
    if budget is None or total <= budget:
        return dict(counts)
    exact = {name: count * budget / total for name, count in counts.items()}
    scaled = {name: int(value) for name, value in exact.items()}
    leftover = budget - sum(scaled.values())
    for name in sorted(exact, key=lambda n: (scaled[n] - exact[n], n))[:leftover]:
        scaled[name] += 1
    return scaled


def fold_recipe(recipe: Recipe, splits: Splits, left_out: str, train_budget: int | None = None) -> Recipe:
    """The recipe with ``left_out``'s rows removed from its mix, the others scaled to the budget."""
    if left_out not in CORPORA:
        raise ValueError(f"unknown corpus {left_out!r}; the corpora are {list(CORPORA)}")
    counts = {name: 0 if name == left_out else min(getattr(recipe, field), len(splits.train.get(name, [])))
              for name, field in CORPORA.items()}
    counts = scaled_counts(counts, train_budget)
    if not sum(counts.values()):
        raise ValueError(f"without {left_out} the recipe trains on nothing")
    return dataclasses.replace(recipe, **{CORPORA[name]: count for name, count in counts.items()})


def held_out_examples(splits: Splits, recipe: Recipe, corpus: str, eval_budget: int | None = None) -> list[Example]:
    """The corpus's held-out rows the model card uses (IMDB: the first ``eval_imdb``), capped by the budget.
    Held-out rows are sorted by text hash, so any prefix is a fair sample."""
    rows = splits.held_out[corpus]
    if corpus == "imdb":
        rows = rows[: recipe.eval_imdb]
    return rows[:eval_budget] if eval_budget is not None else rows


def score_corpus(classifier, corpus: str, examples: list[Example]) -> dict:
    """Polarity for binary corpora; 3-class accuracy, and polarity on the non-neutral rows, for tweets."""
    if corpus == "tweets":
        three = classification_metrics([e.label for e in examples], predict(classifier, [e.text for e in examples]), LABELS)
        polar = [e for e in examples if e.label in BINARY]
        polarity = classification_metrics([e.label for e in polar], predict(classifier, [e.text for e in polar], BINARY), BINARY)
        return {"score": three["accuracy"], "metric": "3-class accuracy", "three_class": three,
                "polarity": polarity, "polarity_accuracy": polarity["accuracy"]}
    polarity = classification_metrics([e.label for e in examples], predict(classifier, [e.text for e in examples], BINARY), BINARY)
    return {"score": polarity["accuracy"], "metric": "polarity accuracy", "polarity": polarity,
            "polarity_accuracy": polarity["accuracy"]}


def leave_one_corpus_out(
    splits: Splits,
    recipe: Recipe = Recipe(),
    *,
    base_model: str | None = None,
    corpora: list[str] | None = None,
    train_budget: int | None = None,
    eval_budget: int | None = None,
    suite: bool = True,
    progress: bool = True,
) -> dict:
    """Train one model per left-out corpus (in a temporary directory, removed afterwards) and score it."""
    from server.engines.loading import SequenceClassifier
    from training.behavioural import run_suite
    from training.train import fine_tune

    base_model = base_model or str(base_model_dir())
    folds = {}
    for corpus in corpora or list(CORPORA):
        started = time.perf_counter()
        fold = fold_recipe(recipe, splits, corpus, train_budget)
        mix = training_mix(splits, fold)
        examples = held_out_examples(splits, recipe, corpus, eval_budget)
        work = Path(tempfile.mkdtemp(prefix=f"loco-{corpus}-"))
        try:
            report = fine_tune(base_model, mix, work, labels=LABELS, options=train_options(fold), progress=progress)
            classifier = SequenceClassifier(str(work), device="cpu", dtype="float32")
            result = score_corpus(classifier, corpus, examples)
            if suite:
                behavioural = run_suite(classifier)
                result["behavioural_suite"] = {"overall": behavioural["overall"]["pass_rate"],
                                               "by_capability": {n: r["pass_rate"] for n, r in behavioural["by_capability"].items()}}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result.update({
            "train_rows_by_source": {name: getattr(fold, field) for name, field in CORPORA.items()},
            "train_steps": report.steps,
            "test_rows": len(examples),
            "seconds": round(time.perf_counter() - started, 1),
        })
        folds[corpus] = result
        print(f"left out {corpus}: {result['metric']} {result['score']:.4f}", flush=True)
    return {"protocol": "leave-one-corpus-out", "recipe": dataclasses.asdict(recipe), "base_model": base_model,
            "train_budget": train_budget, "eval_budget": eval_budget, "folds": folds}


def format_loco_report(result: dict) -> str:
    lines = [f"Leave-one-corpus-out (train budget {result['train_budget'] or 'the whole mix'}, "
             f"test budget {result['eval_budget'] or 'the model card sets'})", "",
             "| left out | trained on | steps | test rows | score | polarity | suite overall | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for corpus, fold in result["folds"].items():
        trained = ", ".join(f"{n} {c}" for n, c in fold["train_rows_by_source"].items() if c)
        suite = fold.get("behavioural_suite", {}).get("overall")
        lines.append(f"| {corpus} | {trained} | {fold['train_steps']} | {fold['test_rows']} | "
                     f"{fold['score']:.4f} ({fold['metric']}) | {fold['polarity_accuracy']:.4f} | "
                     f"{'' if suite is None else f'{suite:.4f}'} | {fold['seconds']:.0f} |")
    return "\n".join(lines)


class LocoSettings(BaseSettings):
    """Leave-one-corpus-out evaluation of the built-in recipe (or a variant of it)."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_LOCO_", cli_kebab_case=True, cli_prog_name="sentiment-evaluate-loco",
                                      cli_implicit_flags=True)

    train_budget: int | None = Field(None, ge=1, description="Most training texts per fold: the recipe's mix without "
                                     "the left-out corpus, scaled down in proportion (default: the whole mix).")
    eval_budget: int | None = Field(None, ge=1, description="Most test texts per left-out corpus (default: the model card's held-out sets).")
    recipe_json: str | None = Field(None, description='Recipe fields to change, as JSON (e.g. \'{"epochs": 1.5, "train_imdb": 0}\').')
    corpora: list[str] = Field(list(CORPORA), description="Corpora to leave out, one fold each.")
    base_model: str | None = Field(None, description="Encoder to fine-tune (default: the built-in recipe's).")
    suite: bool = Field(True, description="Run the behavioural suite on each fold's model (--no-suite skips it).")
    output_json: Path | None = Field(None, description="Where to write the results as JSON.")
    threads: int | None = Field(None, ge=1, description="torch threads (default: torch's choice).")


def recipe_with(overrides: str | None) -> Recipe:
    """Recipe() with the JSON object's fields replaced; unknown fields are an error."""
    if not overrides:
        return Recipe()
    values = json.loads(overrides)
    known = {f.name for f in dataclasses.fields(Recipe)}
    if not isinstance(values, dict) or set(values) - known:
        raise ValueError(f"--recipe-json must be an object with fields among {sorted(known)}")
    return dataclasses.replace(Recipe(), **values)


def main(argv: list[str] | None = None) -> None:
    settings = LocoSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    from training.builtin import load_splits

    result = leave_one_corpus_out(load_splits(), recipe_with(settings.recipe_json), base_model=settings.base_model,
                                  corpora=settings.corpora, train_budget=settings.train_budget,
                                  eval_budget=settings.eval_budget, suite=settings.suite)
    print(format_loco_report(result))
    if settings.output_json:
        settings.output_json.write_text(json.dumps(result, indent=2))
        print(f"wrote {settings.output_json}")


if __name__ == "__main__":
    main()
