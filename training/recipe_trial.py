"""Try a variant of the built-in recipe at a training budget: held-out sets and the behavioural suite.

A full build of the built-in model takes 10-20 minutes on two cores, so recipe choices are screened at a
smaller budget first (the mix scaled down in proportion, as leave-one-corpus-out does) and only the best
are built in full. Compare trials only at the same budgets. Each trial appends one JSON line to
``--results`` so a grid can be run in the background and read as it goes.

    sentiment-recipe-trial --name v2 --train-budget 8000
    sentiment-recipe-trial --name balanced --recipe-json '{"balance_tweet_classes": true}' --train-budget 8000
    sentiment-recipe-trial                                   # the results so far, as a markdown table
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

from training.builtin import V3, Recipe, accuracy_by_domain, base_model_dir, load_splits, train_options, training_mix
from training.evaluate import predict
from training.leave_one_out import CORPORA, budget_recipe, held_out_examples, recipe_with, score_corpus


def run_trial(recipe: Recipe, *, train_budget: int | None, eval_budget: int | None, base_model: str | None = None,
              progress: bool = True) -> dict:
    """Train the (scaled) recipe in a temporary directory and score it; the model is not kept."""
    from server.core.classifier import SequenceClassifier
    from training.behavioural import run_suite
    from training.train import fine_tune

    started = time.perf_counter()
    splits = load_splits()
    scaled = budget_recipe(recipe, splits, train_budget)
    work = Path(tempfile.mkdtemp(prefix="recipe-trial-"))
    try:
        report = fine_tune(base_model or str(base_model_dir()), training_mix(splits, scaled), work, options=train_options(scaled),
                           labels=["negative", "neutral", "positive"], progress=progress)
        classifier = SequenceClassifier(str(work), device="cpu", dtype="float32")
        held_out = {}
        for corpus in CORPORA:
            scores = score_corpus(classifier, corpus, held_out_examples(splits, recipe, corpus, eval_budget))
            held_out[corpus] = {"score": scores["score"], "metric": scores["metric"],
                                "polarity_accuracy": scores["polarity_accuracy"]}
        written = splits.held_out["written"]  # every domain's held-out rows, whatever the eval budget
        by_domain = accuracy_by_domain(written, predict(classifier, [e.text for e in written]))
        suite = run_suite(classifier)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        # the recipe as trained: its counts before the budget, and without the teacher (budget_recipe says why)
        "recipe": dataclasses.asdict(dataclasses.replace(recipe, distill_weight=scaled.distill_weight,
                                                         train_transfer=scaled.train_transfer)),
        "train_budget": train_budget,
        "eval_budget": eval_budget,
        "train_rows_by_source": {name: getattr(scaled, field) for name, field in CORPORA.items()},
        "train_steps": report.steps,
        "train_seconds": report.seconds,
        "held_out": held_out,
        "written_by_domain": {name: r["accuracy"] for name, r in by_domain.items()},
        "suite_overall": suite["overall"]["pass_rate"],
        "suite_by_capability": {n: r["pass_rate"] for n, r in suite["by_capability"].items()},
        "suite_by_label": {n: r["pass_rate"] for n, r in suite["by_expected_label"].items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def format_trial(name: str, trial: dict) -> str:
    held = trial["held_out"]
    capabilities = " ".join(f"{n[:8]}={r:.2f}" for n, r in trial["suite_by_capability"].items())
    return (f"{name}: suite {trial['suite_overall']:.3f} | written {held['written']['score']:.3f} "
            f"| tweets {held['tweets']['score']:.3f} "
            f"(polarity {held['tweets']['polarity_accuracy']:.3f}) RT {held['rotten_tomatoes']['score']:.3f} "
            f"IMDB {held['imdb']['score']:.3f} | {capabilities} | {trial['seconds']:.0f}s")


CAPABILITY_COLUMNS = ("implicit_polarity", "negation", "contrast", "intensifier_hedge", "neutral_fact", "comparison",
                      "emoji_slang", "irony")


def format_table(trials: list[dict]) -> str:
    """The trials of a results file as one markdown table (suite by capability, held-out sets)."""
    lines = ["| trial | changes from v3 | budget | suite | " + " | ".join(CAPABILITY_COLUMNS)
             + " | written 3-class | tweets 3-class | RT | IMDB | seconds |",
             "|" + "---|" * (9 + len(CAPABILITY_COLUMNS))]
    defaults = json.loads(json.dumps(dataclasses.asdict(V3)))
    for trial in trials:
        changes = ", ".join(f"{k}={v}" for k, v in trial["recipe"].items() if defaults.get(k, v) != v) or "(v3)"
        held = trial["held_out"]
        written = held.get("written", {}).get("score")
        lines.append(f"| {trial['name']} | {changes} | {trial['train_budget']} | {trial['suite_overall']:.3f} | "
                     + " | ".join(f"{trial['suite_by_capability'].get(c, float('nan')):.2f}" for c in CAPABILITY_COLUMNS)
                     + f" | {'' if written is None else f'{written:.3f}'} | {held['tweets']['score']:.3f} | "
                       f"{held['rotten_tomatoes']['score']:.3f} | {held['imdb']['score']:.3f} | {trial['seconds']:.0f} |")
    return "\n".join(lines)


class TrialSettings(BaseSettings):
    """Train one variant of the built-in recipe at a budget and report held-out sets and the suite."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_TRIAL_", cli_kebab_case=True,
                                      cli_prog_name="sentiment-recipe-trial", cli_implicit_flags=True)

    name: str | None = Field(None, description="A name for this trial in the results (without it: print the "
                             "results file as a table and train nothing).")
    recipe_json: str | None = Field(None, description='Recipe fields to change, as JSON (e.g. \'{"probe_epochs": 0.5}\').')
    train_budget: int | None = Field(8000, ge=1, description="Most training texts (the mix scaled down in proportion).")
    eval_budget: int | None = Field(1000, ge=1, description="Most held-out texts per corpus.")
    results: Path = Field(Path("recipe-trials.jsonl"), description="JSON lines file the trial is appended to.")
    base_model: str | None = Field(None, description="Encoder to fine-tune (default: the built-in recipe's).")
    threads: int | None = Field(None, ge=1, description="torch threads (default: torch's choice).")


def main(argv: list[str] | None = None) -> None:
    settings = TrialSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    if settings.name is None:
        trials = [json.loads(line) for line in settings.results.read_text(encoding="utf-8").splitlines() if line.strip()]
        print(format_table(trials))
        return
    trial = run_trial(recipe_with(settings.recipe_json), train_budget=settings.train_budget,
                      eval_budget=settings.eval_budget, base_model=settings.base_model, progress=False)
    trial = {"name": settings.name, **trial}
    with settings.results.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(trial) + "\n")
    print(format_trial(settings.name, trial), flush=True)


if __name__ == "__main__":
    main()
