"""Leave-one-out: train the built-in recipe without one corpus, or without one domain of the written corpus,
then test on what was left out.

A recipe that only fits its own data scores well on the held-out rows of what it trained on and badly on
what it has never seen; this protocol measures the second (issues 11 and 25).

- **Corpus folds** (tweets, Rotten Tomatoes, IMDB, the written corpus): the mix without that corpus.
  Binary corpora (Rotten Tomatoes, IMDB) are scored by polarity (the arg-max of negative and positive);
  tweets and the written corpus by 3-class accuracy, with polarity on their non-neutral rows beside it.
- **Domain folds** (products, software, ... of the written corpus): the mix without that domain's written
  rows, scored on the domain's held-out rows (3-class accuracy, polarity beside it). A recipe without
  written rows trains the same model for every domain fold; it is trained once.

Each fold also runs the behavioural suite. A budget caps the training texts of each fold (the recipe's mix
scaled down in proportion) and the test texts, so that recipes can be compared at a size the machine
affords; compare recipes only at the same budget.
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

from training.builtin import BINARY, LABELS, Recipe, Splits, base_model_dir, source_rows, train_options, training_mix
from training.data import Example
from training.evaluate import classification_metrics, predict
from training.written import DOMAINS

# corpus -> the Recipe field that says how many of its training rows the mix takes
CORPORA = {"tweets": "train_tweets", "rotten_tomatoes": "train_rotten_tomatoes", "imdb": "train_imdb",
           "written": "train_written"}
LOCO_CORPORA = ("tweets", "rotten_tomatoes", "imdb")  # the folds run by default (as before the written corpus)


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


def budget_recipe(recipe: Recipe, splits: Splits, train_budget: int | None, left_out: str | None = None) -> Recipe:
    """The recipe with ``left_out``'s rows (a corpus) removed from its mix, and its mix scaled down in proportion
    to at most ``train_budget`` texts; counts are first capped by the rows each source has. Folds and trials
    train on the labelled rows alone, without the teacher or the transfer set: the teacher read every corpus and
    domain, so a fold distilled from it would leak what it leaves out, and its committed probabilities cover
    the full recipe's rows only."""
    if left_out is not None and left_out not in CORPORA:
        raise ValueError(f"unknown corpus {left_out!r}; the corpora are {list(CORPORA)}")
    counts = {name: 0 if name == left_out else min(getattr(recipe, field), len(source_rows(splits, recipe, name)))
              for name, field in CORPORA.items()}
    counts = scaled_counts(counts, train_budget)
    if not sum(counts.values()):
        raise ValueError(f"without {left_out} the recipe trains on nothing")
    return dataclasses.replace(recipe, distill_weight=0.0, train_transfer=0,
                               **{CORPORA[name]: count for name, count in counts.items()})


def fold_recipe(recipe: Recipe, splits: Splits, left_out: str, train_budget: int | None = None) -> Recipe:
    """A corpus fold: the recipe without ``left_out``, the others scaled to the budget."""
    return budget_recipe(recipe, splits, train_budget, left_out)


def domain_fold_recipe(recipe: Recipe, splits: Splits, domain: str, train_budget: int | None = None) -> Recipe:
    """A domain fold: the recipe without the written rows of ``domain``, scaled to the budget."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; the domains are {list(DOMAINS)}")
    without = dataclasses.replace(recipe, exclude_domains=tuple(sorted({*recipe.exclude_domains, domain})))
    return budget_recipe(without, splits, train_budget)


def held_out_examples(splits: Splits, recipe: Recipe, corpus: str, eval_budget: int | None = None,
                      domain: str | None = None) -> list[Example]:
    """The held-out rows the model card uses (IMDB: the first ``eval_imdb``; the written corpus: one domain's
    when given), capped by the budget. Held-out rows are sorted by text hash, so any prefix is a fair sample."""
    rows = splits.held_out[corpus]
    if corpus == "imdb":
        rows = rows[: recipe.eval_imdb]
    if domain is not None:
        rows = [e for e in rows if e.domain == domain]
    return rows[:eval_budget] if eval_budget is not None else rows


def score_corpus(classifier, corpus: str, examples: list[Example]) -> dict:
    """Polarity for binary corpora; 3-class accuracy, and polarity on the non-neutral rows, for the others."""
    if corpus in ("tweets", "written"):
        three = classification_metrics([e.label for e in examples], predict(classifier, [e.text for e in examples]), LABELS)
        polar = [e for e in examples if e.label in BINARY]
        polarity = classification_metrics([e.label for e in polar], predict(classifier, [e.text for e in polar], BINARY), BINARY)
        return {"score": three["accuracy"], "metric": "3-class accuracy", "three_class": three,
                "polarity": polarity, "polarity_accuracy": polarity["accuracy"]}
    polarity = classification_metrics([e.label for e in examples], predict(classifier, [e.text for e in examples], BINARY), BINARY)
    return {"score": polarity["accuracy"], "metric": "polarity accuracy", "polarity": polarity,
            "polarity_accuracy": polarity["accuracy"]}


def _suite_rates(classifier) -> dict:
    from training.behavioural import run_suite

    report = run_suite(classifier)
    return {"overall": report["overall"]["pass_rate"],
            "by_capability": {n: r["pass_rate"] for n, r in report["by_capability"].items()}}


class _Trainer:
    """Trains a fold's model in a temporary directory, once per distinct fold recipe (a recipe without
    written rows gives every domain fold the same model)."""

    def __init__(self, splits: Splits, base_model: str, progress: bool):
        self.splits, self.base_model, self.progress = splits, base_model, progress
        self._models: dict[Recipe, tuple] = {}

    def classifier(self, fold: Recipe):
        from server.core.classifier import SequenceClassifier
        from training.train import fine_tune

        key = dataclasses.replace(fold, exclude_domains=()) if not fold.train_written else fold
        if key not in self._models:
            work = Path(tempfile.mkdtemp(prefix="loo-"))
            report = fine_tune(self.base_model, training_mix(self.splits, fold), work, labels=LABELS,
                               options=train_options(fold), progress=self.progress)
            self._models[key] = (SequenceClassifier(str(work), device="cpu", dtype="float32", engine="torch"), report, work)
        return self._models[key]

    def close(self) -> None:
        for _, _, work in self._models.values():
            shutil.rmtree(work, ignore_errors=True)


def leave_one_out(
    splits: Splits,
    recipe: Recipe = Recipe(),
    *,
    base_model: str | None = None,
    corpora: list[str] | None = None,
    domains: list[str] | None = None,
    train_budget: int | None = None,
    eval_budget: int | None = None,
    suite: bool = True,
    progress: bool = True,
) -> dict:
    """Train one model per left-out corpus and per left-out domain (in temporary directories) and score each."""
    trainer = _Trainer(splits, base_model or str(base_model_dir()), progress)
    folds = {}
    plans = [(f"corpus:{c}", fold_recipe(recipe, splits, c, train_budget), c, None)
             for c in (LOCO_CORPORA if corpora is None else corpora)]
    plans += [(f"domain:{d}", domain_fold_recipe(recipe, splits, d, train_budget), "written", d)
              for d in (list(DOMAINS) if domains is None else domains)]
    try:
        for name, fold, corpus, domain in plans:
            started = time.perf_counter()
            classifier, report, _ = trainer.classifier(fold)
            examples = held_out_examples(splits, recipe, corpus, eval_budget, domain)
            result = score_corpus(classifier, corpus, examples)
            if suite:
                result["behavioural_suite"] = _suite_rates(classifier)
            result.update({
                "train_rows_by_source": {source: getattr(fold, field) for source, field in CORPORA.items()},
                "train_steps": report.steps, "test_rows": len(examples),
                "seconds": round(time.perf_counter() - started, 1),
            })
            folds[name] = result
            print(f"left out {name}: {result['metric']} {result['score']:.4f}", flush=True)
    finally:
        trainer.close()
    return {"protocol": "leave-one-out", "recipe": dataclasses.asdict(recipe), "base_model": trainer.base_model,
            "train_budget": train_budget, "eval_budget": eval_budget, "folds": folds}


def format_loco_report(result: dict) -> str:
    lines = [f"Leave-one-out (train budget {result['train_budget'] or 'the whole mix'}, "
             f"test budget {result['eval_budget'] or 'the model card sets'})", "",
             "| left out | trained on | steps | test rows | score | polarity | suite overall | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for name, fold in result["folds"].items():
        trained = ", ".join(f"{n} {c}" for n, c in fold["train_rows_by_source"].items() if c)
        suite = fold.get("behavioural_suite", {}).get("overall")
        lines.append(f"| {name} | {trained} | {fold['train_steps']} | {fold['test_rows']} | "
                     f"{fold['score']:.4f} ({fold['metric']}) | {fold['polarity_accuracy']:.4f} | "
                     f"{'' if suite is None else f'{suite:.4f}'} | {fold['seconds']:.0f} |")
    return "\n".join(lines)


class LocoSettings(BaseSettings):
    """Leave-one-out evaluation of the built-in recipe (or a variant): by corpus and by written domain."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_LOCO_", cli_kebab_case=True, cli_prog_name="sentiment-evaluate-loco",
                                      cli_implicit_flags=True)

    train_budget: int | None = Field(None, ge=1, description="Most training texts per fold: the recipe's mix without "
                                     "what is left out, scaled down in proportion (default: the whole mix).")
    eval_budget: int | None = Field(None, ge=1, description="Most test texts per fold (default: the model card's held-out sets).")
    recipe_json: str | None = Field(None, description='Recipe fields to change, as JSON (e.g. \'{"epochs": 1.5, "train_imdb": 0}\').')
    corpora: list[str] = Field(list(LOCO_CORPORA), description="Corpora to leave out, one fold each (also: written).")
    domains: list[str] = Field(list(DOMAINS), description="Domains of the written corpus to leave out, one fold each "
                               "('[]' for none).")
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
    if "exclude_domains" in values:
        values["exclude_domains"] = tuple(values["exclude_domains"])
    return dataclasses.replace(Recipe(), **values)


def main(argv: list[str] | None = None) -> None:
    settings = LocoSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    from training.builtin import load_splits

    result = leave_one_out(load_splits(), recipe_with(settings.recipe_json), base_model=settings.base_model,
                           corpora=settings.corpora, domains=settings.domains, train_budget=settings.train_budget,
                           eval_budget=settings.eval_budget, suite=settings.suite)
    print(format_loco_report(result))
    if settings.output_json:
        settings.output_json.write_text(json.dumps(result, indent=2))
        print(f"wrote {settings.output_json}")


if __name__ == "__main__":
    main()
