"""The written corpus: labelled sentences the project team wrote for the built-in model, across the domains
and styles people send to a sentiment service (``training/data/written/``; its data card is the README
there, the writers' briefs are beside it, and the label audit is ``audit.jsonl``).

Held-out rows are chosen by a hash of the normalised text, as for the other corpora, so a fixed share of
every domain is never trained on, whatever the recipe; leave-one-domain-out trains without a domain and
tests on that domain's held-out rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from training.behavioural import normalise
from training.data import Example

WRITTEN_DIR = Path(__file__).with_name("data") / "written"
CORPUS = WRITTEN_DIR / "corpus.jsonl"
# Later rounds of writing, each audited as the first and kept in a file of its own (the data card says which
# recipe reads which): the second (writers w12-w17) for the six domains v4 read below 0.85, the third (w18-w23)
# for politics and finance, the two it read worst after the second.
ROUND2 = WRITTEN_DIR / "round2.jsonl"
ROUND3 = WRITTEN_DIR / "round3.jsonl"
LATER_ROUNDS = (ROUND2, ROUND3)  # in the order written; each round's audit is audit-<its stem>.jsonl
ALL_ROUNDS = (CORPUS, *LATER_ROUNDS)  # what the built-in recipe (v5) trains on and holds out from
LABELS = ("negative", "neutral", "positive")
DOMAINS = {
    "products": "products: electronics, appliances, clothing, beauty, cars, home, toys, tools",
    "software": "software, apps and websites",
    "services": "services and customer support: banks, telecoms, delivery, utilities, healthcare, government",
    "finance": "finance, business and the economy",
    "food": "restaurants, food and drink",
    "travel": "travel and hotels",
    "entertainment": "films, TV, music, books, games, sport",
    "politics": "politics, public life and editorials",
    "health": "health, medicine and fitness",
    "social": "everyday life and social posts",
}
STYLES = ("review_snippet", "review_long", "rating_title", "headline", "news", "analyst_note", "editorial", "letter",
          "support_message", "social_post", "question", "conversation")
PHENOMENA = ("explicit", "implicit", "negation", "double_negation", "contrast", "intensifier", "hedge", "comparison",
             "mixed", "neutral_fact", "question", "sarcasm", "slang_emoji")
HELD_OUT_PERCENT = 20  # of every domain: enough rows (150-800 a domain) to score each domain apart


@dataclass(frozen=True)
class WrittenRow:
    id: str
    text: str
    label: str
    domain: str
    topic: str
    style: str
    phenomena: tuple[str, ...]
    writer: str

    def example(self) -> Example:
        return Example(self.text, self.label)


def text_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(" ".join(text.lower().split()).encode()).digest()[:8], "big")


def is_held_out(text: str, percent: int = HELD_OUT_PERCENT) -> bool:
    """The same rule as the other corpora (``training.builtin``): a hash of the normalised text."""
    return text_hash(text) % 100 < percent


def load_written(path: Path = CORPUS) -> list[WrittenRow]:
    """Read and check the corpus: known labels, domains, styles and phenomena; ids and texts unique."""
    rows, ids, texts = [], set(), set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            row = WrittenRow(id=raw["id"], text=raw["text"].strip(), label=raw["label"], domain=raw["domain"],
                             topic=raw["topic"], style=raw["style"], phenomena=tuple(raw["phenomena"]),
                             writer=raw["writer"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a corpus row ({error})") from None
        problems = [f"{name} {value!r}" for name, value, known in (
            ("label", row.label, LABELS), ("domain", row.domain, DOMAINS), ("style", row.style, STYLES))
            if value not in known]
        problems += [f"phenomenon {p!r}" for p in row.phenomena if p not in PHENOMENA]
        if not row.text:
            problems.append("empty text")
        if row.id in ids:
            problems.append(f"duplicate id {row.id!r}")
        if normalise(row.text) in texts:
            problems.append("duplicate text")
        if problems:
            raise ValueError(f"{path}:{number}: " + ", ".join(problems))
        ids.add(row.id)
        texts.add(normalise(row.text))
        rows.append(row)
    return rows


def split_written(rows: list[WrittenRow]) -> tuple[list[WrittenRow], list[WrittenRow]]:
    """(train, held out): held-out rows sorted by their hash, so any prefix is a fair sample."""
    held = sorted((r for r in rows if is_held_out(r.text)), key=lambda r: text_hash(r.text))
    return [r for r in rows if not is_held_out(r.text)], held
