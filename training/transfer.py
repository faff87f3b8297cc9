"""The transfer set: unlabelled sentences the project team wrote for distillation (``training/data/transfer/``;
its data card and the writers' briefs are beside it). No human label trains the model from it: the teacher
(``training.teacher``) reads every sentence and the built-in model learns the teacher's probabilities for it,
so the student meets the teacher's reading on more of the texts people send than the labelled rows hold
(task-specific distillation with extra transfer text, as in TinyBERT and DistilBERT's task distillation).

Each row keeps the label its writer meant (``intended``) only to check the teacher; nothing trains on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.behavioural import normalise
from training.data import Example
from training.written import DOMAINS, LABELS, STYLES

TRANSFER = Path(__file__).with_name("data") / "transfer" / "sentences.jsonl"


@dataclass(frozen=True)
class TransferRow:
    text: str
    domain: str
    style: str
    writer: str
    intended: str  # the writer's reading, kept to check the teacher against; never trained on


def load_transfer(path: Path = TRANSFER) -> list[TransferRow]:
    """Read and check the set: known domains, styles and intended labels; texts unique once normalised."""
    rows, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            row = TransferRow(text=raw["text"].strip(), domain=raw["domain"], style=raw["style"],
                              writer=raw["writer"], intended=raw["intended"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}:{number}: not a transfer row ({error})") from None
        problems = [f"{name} {value!r}" for name, value, known in (
            ("domain", row.domain, DOMAINS), ("style", row.style, STYLES), ("intended", row.intended, LABELS))
            if value not in known]
        if not row.text:
            problems.append("empty text")
        if normalise(row.text) in seen:
            problems.append("duplicate text")
        if problems:
            raise ValueError(f"{path}:{number}: " + ", ".join(problems))
        seen.add(normalise(row.text))
        rows.append(row)
    return rows


def teacher_labelled(rows: list[TransferRow], soft_labels: dict[str, tuple[float, ...]],
                     labels: list[str]) -> list[Example]:
    """The rows as training examples carrying the teacher's probabilities, labelled by the teacher's choice
    (every class a candidate); a row the teacher never read is an error (``make teacher``)."""
    from training.teacher import with_teacher

    examples = with_teacher([Example(r.text, labels[0], domain=r.domain) for r in rows], soft_labels)
    return [Example(e.text, labels[max(range(len(labels)), key=e.teacher.__getitem__)], domain=e.domain,
                    teacher=e.teacher) for e in examples]
