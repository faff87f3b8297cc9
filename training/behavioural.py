"""The behavioural test suite: how a sentiment model reads domains and phrasings it never trained on.

In the spirit of CheckList (Ribeiro et al., ACL 2020): short sentences written by hand, each with the
label a careful reader gives it, grouped by domain and by the capability it probes. Held-out rows of
the training corpora reward fitting those corpora; pass rates here reward generalising, which is what
recipe choices are made by (issue 11). The sentences live in ``behavioural_suite.jsonl`` beside this
module and are never used for training (``tests/test_behavioural.py`` checks the training mix).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SUITE_PATH = Path(__file__).with_name("behavioural_suite.jsonl")
LABELS = ("negative", "neutral", "positive")

CAPABILITIES = {
    "implicit_polarity": "plainly positive or negative statements without sentiment words",
    "negation": "negated opinions and negated problems",
    "contrast": "two clauses joined by 'but'; the second carries the verdict",
    "intensifier_hedge": "opinions made stronger ('absolutely') or softer ('a bit', 'fairly')",
    "neutral_fact": "facts, plans and questions with no opinion",
    "comparison": "better or worse than something else (or the same)",
    "emoji_slang": "emoji, slang and informal spelling",
    "irony": "sarcasm and irony (reported, not required)",
}
DOMAINS = {
    "products": "product reviews",
    "restaurants_services": "restaurants and services",
    "travel": "travel: flights, hotels, trains",
    "finance_news": "finance and business news",
    "software": "software and apps",
    "movies": "films and series",
    "social": "social posts",
}
REPORTED_ONLY = ("irony",)
# The v3 targets of issue 11: overall, and every capability except those reported only.
TARGET_OVERALL = 0.85
TARGET_CAPABILITY = 0.75


@dataclass(frozen=True)
class SuiteCase:
    id: str
    text: str
    label: str
    domain: str
    capability: str


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped ("don't" = "dont"), other punctuation a space, whitespace collapsed:
    how suite texts are compared with each other and with training text."""
    text = text.lower().replace("'", "").replace("\u2019", "").replace("\u2018", "")
    return " ".join("".join(" " if unicodedata.category(c).startswith("P") else c for c in text).split())


def load_suite(path: str | Path = SUITE_PATH) -> list[SuiteCase]:
    """Read and check the suite: known labels, domains and capabilities; ids and texts unique."""
    path = Path(path)
    cases, ids, texts = [], set(), set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case = SuiteCase(**{name: str(row[name]).strip() for name in ("id", "text", "label", "domain", "capability")})
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a suite row with id, text, label, domain, capability ({error})") from None
        problems = [f"{field} {value!r}" for field, value, known in (
            ("label", case.label, LABELS), ("domain", case.domain, DOMAINS), ("capability", case.capability, CAPABILITIES))
            if value not in known]
        if case.id in ids:
            problems.append(f"duplicate id {case.id!r}")
        if normalise(case.text) in texts:
            problems.append(f"duplicate text {case.text!r}")
        if not case.text:
            problems.append("empty text")
        if problems:
            raise ValueError(f"{path}:{number}: " + ", ".join(problems))
        ids.add(case.id)
        texts.add(normalise(case.text))
        cases.append(case)
    if not cases:
        raise ValueError(f"{path}: no suite rows")
    return cases


def _rate(outcomes: list[bool]) -> dict:
    return {"passed": sum(outcomes), "total": len(outcomes),
            "pass_rate": round(sum(outcomes) / len(outcomes), 4) if outcomes else None}


def _grouped(cases: list[SuiteCase], passed: list[bool], key, order) -> dict[str, dict]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for case, ok in zip(cases, passed):
        groups[key(case)].append(ok)
    return {name: _rate(groups[name]) for name in order if name in groups}


def suite_report(cases: list[SuiteCase], predicted: list[str]) -> dict:
    """Pass rates overall, per capability, per domain, per expected label and per domain x capability;
    the confusion matrix; the failures; and whether the issue-11 targets are met."""
    if len(cases) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(cases)} suite cases")
    passed = [case.label == label for case, label in zip(cases, predicted)]
    by_capability = _grouped(cases, passed, lambda c: c.capability, CAPABILITIES)
    confusion = [[sum(1 for c, p in zip(cases, predicted) if c.label == t and p == q) for q in LABELS] for t in LABELS]
    overall = _rate(passed)
    short = []
    if overall["pass_rate"] < TARGET_OVERALL:
        short.append(f"overall {overall['pass_rate']:.3f} < {TARGET_OVERALL}")
    for name, rate in by_capability.items():
        if name not in REPORTED_ONLY and rate["pass_rate"] < TARGET_CAPABILITY:
            short.append(f"{name} {rate['pass_rate']:.3f} < {TARGET_CAPABILITY}")
    return {
        "cases": len(cases),
        "overall": overall,
        "by_capability": by_capability,
        "by_domain": _grouped(cases, passed, lambda c: c.domain, DOMAINS),
        "by_expected_label": _grouped(cases, passed, lambda c: c.label, LABELS),
        "by_domain_and_capability": {
            domain: _grouped([c for c in cases if c.domain == domain],
                             [ok for c, ok in zip(cases, passed) if c.domain == domain], lambda c: c.capability, CAPABILITIES)
            for domain in DOMAINS if any(c.domain == domain for c in cases)
        },
        "confusion": {"labels": list(LABELS), "rows_expected_columns_predicted": confusion},
        "targets": {"overall": TARGET_OVERALL, "every_capability": TARGET_CAPABILITY,
                    "reported_only": list(REPORTED_ONLY), "met": not short, "short_of": short},
        "failures": [{"id": c.id, "text": c.text, "expected": c.label, "predicted": p}
                     for c, p, ok in zip(cases, predicted, passed) if not ok],
    }


def _pct(rate: dict | None) -> str:
    return "" if not rate or rate["pass_rate"] is None else f"{100 * rate['pass_rate']:.1f}%"


def format_suite_report(report: dict, failures: int = 0) -> str:
    """Markdown tables: per capability, per domain, per expected label, and domain x capability."""
    overall = report["overall"]
    lines = [f"Behavioural suite: {overall['passed']}/{overall['total']} passed ({_pct(overall)}); "
             f"targets (overall >= {TARGET_OVERALL:.0%}, every capability but {', '.join(REPORTED_ONLY)} "
             f">= {TARGET_CAPABILITY:.0%}): " + ("met" if report["targets"]["met"] else "not met: " + "; ".join(report["targets"]["short_of"])),
             "", "| capability | what it probes | passed | pass rate |", "|---|---|---|---|"]
    for name, rate in report["by_capability"].items():
        note = " (reported only)" if name in REPORTED_ONLY else ""
        lines.append(f"| {name}{note} | {CAPABILITIES[name]} | {rate['passed']}/{rate['total']} | {_pct(rate)} |")
    lines += ["", "| domain | passed | pass rate |", "|---|---|---|"]
    lines += [f"| {name} | {rate['passed']}/{rate['total']} | {_pct(rate)} |" for name, rate in report["by_domain"].items()]
    lines += ["", "| expected label | passed | pass rate |", "|---|---|---|"]
    lines += [f"| {name} | {rate['passed']}/{rate['total']} | {_pct(rate)} |" for name, rate in report["by_expected_label"].items()]
    capabilities = list(report["by_capability"])
    lines += ["", "| domain \\ capability | " + " | ".join(capabilities) + " |", "|---" * (len(capabilities) + 1) + "|"]
    for domain, rates in report["by_domain_and_capability"].items():
        lines.append(f"| {domain} | " + " | ".join(_pct(rates.get(name)) for name in capabilities) + " |")
    if failures and report["failures"]:
        shown = report["failures"][:failures]
        lines += ["", f"Failures ({len(shown)} of {len(report['failures'])}):", "",
                  "| id | text | expected | predicted |", "|---|---|---|---|"]
        lines += [f"| {f['id']} | {f['text'].replace('|', '/')} | {f['expected']} | {f['predicted']} |" for f in shown]
    return "\n".join(lines)


def run_suite(classifier, cases: list[SuiteCase] | None = None) -> dict:
    """Predict every suite sentence with a loaded classifier (arg-max over all its classes) and report."""
    from training.evaluate import predict

    missing = set(LABELS) - set(classifier.labels)
    if missing:
        raise ValueError(f"the suite needs a model with the labels {list(LABELS)}; this one has {classifier.labels}")
    cases = load_suite() if cases is None else cases
    return suite_report(cases, predict(classifier, [case.text for case in cases]))


class SuiteSettings(BaseSettings):
    """Run a model directory on the behavioural suite; print pass rates per capability and domain."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_SUITE_", cli_kebab_case=True, cli_prog_name="sentiment-evaluate-suite",
                                      cli_implicit_flags=True)

    model: str = Field(description="Model directory (or hub id) whose labels include negative, neutral, positive.")
    suite: Path = Field(SUITE_PATH, description="Suite file (JSONL: id, text, label, domain, capability).")
    output_json: Path | None = Field(None, description="Where to write the full report (with every failure) as JSON.")
    failures: int = Field(20, ge=0, description="How many failures to print after the tables.")
    device: str = Field("auto", description="auto, cpu or cuda.")
    fail_below_target: bool = Field(False, description="Exit with status 1 when the issue-11 targets are not met.")


def main(argv: list[str] | None = None) -> None:
    settings = SuiteSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    from server.core.classifier import SequenceClassifier

    cases = load_suite(settings.suite)
    classifier = SequenceClassifier(settings.model, device=settings.device, dtype="float32")
    report = run_suite(classifier, cases)
    report["model"] = settings.model
    print(format_suite_report(report, failures=settings.failures))
    if settings.output_json:
        settings.output_json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"\nwrote {settings.output_json}")
    if settings.fail_below_target and not report["targets"]["met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
