"""Fine-tune any BERT-family checkpoint on labelled texts and save a standard Hugging Face model directory.

A row may carry a second segment (``--pair-field``: an aspect, a hypothesis, a query), read as a text pair the
way the server reads ``text_pair``: ``tokenizer(text, pair, truncation="longest_first")``, with segment ids
(``token_type_ids``) where the model has segment embeddings. Rows without one take the single-text path unchanged.
"""

from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from server.engines import reads_token_types
from server.hardware import cpu_has_fast_bf16
from training.data import Example, label_names, read_labelled_file


@dataclass(frozen=True)
class PairedExample(Example):
    """A labelled text with its second segment (None: the row has none and is read as a single text)."""

    text_pair: str | None = None


def read_paired_file(path: str | Path, pair_field: str, text_field: str = "text",
                     label_field: str = "label") -> list[PairedExample]:
    """``read_labelled_file``'s rows (same formats, same rule for blank texts), each with its second segment from
    ``pair_field``: a blank, null or absent value means no pair. A file where no row has one is refused (a
    misspelt column would otherwise train a single-text model without a word said)."""
    path = Path(path)
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            rows = list(csv.DictReader(handle))
    examples = []
    for number, row in enumerate(rows, start=1):
        if text_field not in row or label_field not in row:
            raise ValueError(f"{path}: row {number} lacks the {text_field!r} or {label_field!r} field")
        text = str(row[text_field]).strip()
        pair = row.get(pair_field)
        pair = str(pair).strip() if pair is not None else ""
        if text:
            examples.append(PairedExample(text=text, label=str(row[label_field]).strip(), text_pair=pair or None))
    if not examples:
        raise ValueError(f"{path}: no labelled rows")
    if all(e.text_pair is None for e in examples):
        raise ValueError(f"{path}: no row has a {pair_field!r} value (the pair field); the last row's fields "
                         f"are {sorted(map(str, rows[-1]))}")
    return examples


def encode_pairs(tokenizer, texts: list[str], pairs: list[str | None], max_length: int,
                 segments: bool) -> tuple[list[list[int]], list[list[int]] | None]:
    """Token ids of texts with their second segments, as the server encodes them (``Tokenizer.encode_pairs``):
    a pair through the tokenizer's pair handling, cut longest-first; a text without one as a single text. With
    ``segments`` (the model reads token types and the tokenizer makes them), also each row's token_type_ids
    (0 for the text, 1 for the pair; all 0 for a single text); otherwise None."""
    segments = segments and "token_type_ids" in tokenizer.model_input_names
    ids: list[list[int]] = [[] for _ in texts]
    types: list[list[int]] = [[] for _ in texts]
    alone = [i for i, pair in enumerate(pairs) if pair is None]
    if alone:
        single = tokenizer([texts[i] for i in alone], truncation=True, max_length=max_length)["input_ids"]
        for i, row in zip(alone, single):
            ids[i], types[i] = row, [0] * len(row)
    paired = [i for i, pair in enumerate(pairs) if pair is not None]
    if paired:
        both = tokenizer([texts[i] for i in paired], [pairs[i] for i in paired], truncation="longest_first",
                         max_length=max_length, return_token_type_ids=segments)
        for row, i in enumerate(paired):
            ids[i] = both["input_ids"][row]
            types[i] = both["token_type_ids"][row] if segments else []
    return ids, types if segments else None


@dataclass
class TrainOptions:
    max_length: int = 128
    batch_size: int = 32
    learning_rate: float = 5e-5
    epochs: float = 1.0
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    bf16: bool | None = None  # None: bf16 autocast where the CPU (or GPU) runs bf16 natively
    freeze_word_embeddings: bool = True  # keeps unseen words' meaning from pre-training; faster steps on CPU
    freeze_layers: int = 0  # also freeze all embeddings and the bottom N encoder layers (no backward through them)
    label_smoothing: float = 0.0
    # Linear probe, then fine-tune (Kumar et al., ICLR 2022): train the new head alone on the frozen encoder
    # for this many epochs first, so that fine-tuning starts from a head that fits and distorts the
    # pre-trained features less. 0 = fine-tune from a random head.
    probe_epochs: float = 0.0
    probe_learning_rate: float = 1e-3
    # Distillation (Hinton et al., 2015): the share of each row's loss that follows its teacher probabilities
    # (Example.teacher) instead of its label; 0 = labels only. Every example must then carry them.
    distill_weight: float = 0.0


@dataclass
class TrainReport:
    base_model: str
    labels: list[str]
    train_examples: int
    steps: int
    seconds: float
    bf16: bool
    final_loss: float
    options: dict = field(default_factory=dict)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor,
                         weights: torch.Tensor | None = None, label_smoothing: float = 0.0,
                         teacher: torch.Tensor | None = None, distill_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy where each row's masked classes (-inf) take no part in its softmax; label smoothing
    spreads over the row's own candidate classes only; rows count by ``weights`` (weighted mean).
    ``teacher``: each row's teacher probabilities, renormalised over its candidate classes; the loss is then
    ``distill_weight`` parts cross-entropy against them and the rest against the (smoothed) label."""
    log_probs = torch.log_softmax(logits.float() + masks, dim=-1)
    nll = -log_probs.gather(1, targets[:, None]).squeeze(1)
    allowed = torch.isfinite(masks)
    if label_smoothing:
        uniform = -(log_probs.masked_fill(~allowed, 0.0)).sum(dim=-1) / allowed.sum(dim=-1)
        nll = (1 - label_smoothing) * nll + label_smoothing * uniform
    if teacher is not None and distill_weight:
        soft = teacher.masked_fill(~allowed, 0.0)
        soft = soft / soft.sum(dim=-1, keepdim=True)
        soft_nll = -(soft * log_probs.masked_fill(~allowed, 0.0)).sum(dim=-1)
        nll = (1 - distill_weight) * nll + distill_weight * soft_nll
    if weights is None:
        return nll.mean()
    return (nll * weights).sum() / weights.sum()


def _length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within windows of 50 batches so each batch holds texts of similar length."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def freeze_bottom(model: torch.nn.Module, layers: int) -> None:
    """Freeze the embeddings and the first ``layers`` transformer layers of a BERT-family encoder: the
    backward pass then stops above them, which makes each step cheaper."""
    encoder = model.base_model
    stack = getattr(getattr(encoder, "encoder", None), "layer", None) or getattr(getattr(encoder, "transformer", None), "layer", None)
    if stack is None or not hasattr(encoder, "embeddings"):
        raise ValueError(f"freeze_layers: no embeddings + layer stack found in {type(encoder).__name__}")
    if layers > len(stack):
        raise ValueError(f"freeze_layers={layers}, but the model has {len(stack)} layers")
    for module in [encoder.embeddings, *stack[:layers]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def _head_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The classification head a sequence-classification model adds on top of its encoder."""
    encoder = set(map(id, model.base_model.parameters()))
    head = [p for p in model.parameters() if id(p) not in encoder]
    if not head:
        raise ValueError(f"probe_epochs: no head found outside the encoder of {type(model).__name__}")
    return head


def _train_steps(model, tokenizer, encoded, targets, masks, weights, options: TrainOptions, rng: random.Random,
                 parameters: list[torch.nn.Parameter], steps: int, learning_rate: float, use_bf16: bool,
                 desc: str, progress: bool, token_types: list[list[int]] | None = None,
                 teacher: torch.Tensor | None = None) -> float:
    """``steps`` AdamW steps (linear warm-up and decay) on ``parameters``; returns the smoothed final loss.
    ``token_types``: each row's segment ids (text pairs), padded with the tokenizer's pad type (0) and passed to
    the model; None: the model gets none (single texts, as always)."""
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=options.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(steps * options.warmup_ratio), steps)
    weighted = bool((weights != 1.0).any())
    batches: list[list[int]] = []
    started = time.perf_counter()
    smoothed = None
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress, file=sys.stderr)
    for step in range(steps):
        if not batches:
            batches = _length_bucketed_batches([len(ids) for ids in encoded], options.batch_size, rng)
        batch = batches.pop()
        features = {"input_ids": [encoded[i] for i in batch]}
        if token_types is not None:
            features["token_type_ids"] = [token_types[i] for i in batch]
        padded = tokenizer.pad(features, return_tensors="pt")
        inputs = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
        if token_types is not None:
            inputs["token_type_ids"] = padded["token_type_ids"]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(**inputs).logits
        loss = masked_cross_entropy(logits, torch.tensor([targets[i] for i in batch]), masks[batch],
                                    weights[batch] if weighted else None, options.label_smoothing,
                                    teacher[batch] if teacher is not None else None, options.distill_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss.item()
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed:.3f}", texts_per_s=f"{(step + 1) * options.batch_size / (time.perf_counter() - started):.0f}")
    bar.close()
    return float(smoothed or 0.0)


def fine_tune(
    base_model: str,
    examples: list[Example],
    output_dir: str | Path,
    *,
    labels: list[str] | None = None,
    options: TrainOptions | None = None,
    progress: bool = True,
) -> TrainReport:
    """Train ``base_model`` with a fresh head over ``labels`` and write weights, config and tokenizer. Examples
    with a ``text_pair`` (``PairedExample``) are read as text pairs (``encode_pairs``); without any, the
    single-text path is exactly what it always was."""
    options = options or TrainOptions()
    labels = labels or label_names(examples)
    label_index = {name: i for i, name in enumerate(labels)}
    unknown = {e.label for e in examples} - set(label_index)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among {labels}")
    random.seed(options.seed)
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    use_bf16 = cpu_has_fast_bf16() if options.bf16 is None else options.bf16

    tokenizer = AutoTokenizer.from_pretrained(base_model, use_fast=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label_index,
        ignore_mismatched_sizes=True,
        use_safetensors=True,
    )
    if options.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if options.freeze_layers:
        freeze_bottom(model, options.freeze_layers)
    pairs = [getattr(e, "text_pair", None) for e in examples]
    token_types = None
    if any(pair is not None for pair in pairs):
        encoded, token_types = encode_pairs(tokenizer, [e.text for e in examples], pairs, options.max_length,
                                            segments=reads_token_types(model.config))
    else:
        encoded = tokenizer([e.text for e in examples], truncation=True, max_length=options.max_length)["input_ids"]
    targets = [label_index[e.label] for e in examples]
    # Classes outside an example's candidates get -inf logits in its loss (see Example.candidates)
    masks = torch.zeros((len(examples), len(labels)))
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    for row, example in enumerate(examples):
        if example.candidates:
            masks[row] = torch.tensor([0.0 if name in example.candidates else float("-inf") for name in labels])
    teacher = None
    if options.distill_weight:
        if any(e.teacher is None or len(e.teacher) != len(labels) for e in examples):
            raise ValueError(f"distill_weight: every example needs teacher probabilities over {labels}")
        teacher = torch.tensor([e.teacher for e in examples], dtype=torch.float32)

    steps_per_epoch = math.ceil(len(examples) / options.batch_size)
    total_steps = max(1, round(steps_per_epoch * options.epochs))
    model.train()
    started = time.perf_counter()
    if options.probe_epochs:
        head = _head_parameters(model)
        wanted = {id(p): p.requires_grad for p in model.parameters()}
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for parameter in head:
            parameter.requires_grad_(True)
        _train_steps(model, tokenizer, encoded, targets, masks, weights, options, rng, head,
                     max(1, round(steps_per_epoch * options.probe_epochs)), options.probe_learning_rate, use_bf16,
                     "probe", progress, token_types, teacher)
        for parameter in model.parameters():
            parameter.requires_grad_(wanted[id(parameter)])
    trainable = [p for p in model.parameters() if p.requires_grad]
    smoothed = _train_steps(model, tokenizer, encoded, targets, masks, weights, options, rng, trainable, total_steps,
                            options.learning_rate, use_bf16, "train", progress, token_types, teacher)
    seconds = time.perf_counter() - started

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.config.problem_type = "single_label_classification"
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    return TrainReport(
        base_model=base_model,
        labels=labels,
        train_examples=len(examples),
        steps=total_steps,
        seconds=round(seconds, 1),
        bf16=use_bf16,
        final_loss=round(float(smoothed or 0.0), 4),
        options=asdict(options),
    )


def write_model_card(output_dir: str | Path, title: str, sections: dict[str, str], metadata: dict) -> Path:
    """A model card (README.md) with a JSON block of machine-readable facts and prose sections."""
    lines = [f"# {title}", ""]
    for heading, body in sections.items():
        lines += [f"## {heading}", "", body.strip(), ""]
    lines += ["## Training record", "", "```json", json.dumps(metadata, indent=2, default=str), "```", ""]
    path = Path(output_dir) / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class TrainSettings(BaseSettings):
    """Fine-tune a BERT-family checkpoint on a labelled CSV/JSONL file (columns ``text`` and ``label``, and with
    ``--pair-field`` a second segment per row)."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_TRAIN_", cli_kebab_case=True, cli_prog_name="sentiment-train")

    base_model: str = Field(description="Checkpoint to start from: a local directory or a hub id.")
    train_file: Path = Field(description="Labelled training data (.csv or .jsonl).")
    output_dir: Path = Field(description="Where to write the fine-tuned model directory.")
    eval_file: Path | None = Field(None, description="Optional held-out file evaluated after training.")
    pair_field: str | None = Field(
        None, description="Column with each row's second segment (an aspect, a hypothesis), read as a text pair as "
                          "the server reads text_pair: tokenizer(text, pair), longer segment cut first. A blank, "
                          "null or absent value: that row is a single text. Default: none, every row a single "
                          "text. Applies to --eval-file too.")
    max_length: int = Field(128, description="Tokens per training text (longer texts are cut; a pair: its longer "
                                             "segment first).")
    batch_size: int = Field(32, description="Texts per optimisation step.")
    learning_rate: float = Field(5e-5, description="Peak AdamW learning rate (linear warm-up and decay).")
    epochs: float = Field(1.0, description="Passes over the training data (fractions allowed).")
    seed: int = Field(0, description="Seed for shuffling and the new head: same seed, same model.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing (for noisy labels).")
    freeze_layers: int = Field(0, ge=0, description="Freeze the embeddings and the bottom N encoder layers (cheaper steps).")
    bf16: bool | None = Field(None, description="bf16 autocast; default: on where the hardware runs bf16 natively.")
    threads: int | None = Field(None, description="torch threads (default: torch's choice).")


def main(argv: list[str] | None = None) -> None:
    settings = TrainSettings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    if settings.threads:
        torch.set_num_threads(settings.threads)

    def read(path: Path) -> list[Example]:
        return read_paired_file(path, settings.pair_field) if settings.pair_field else read_labelled_file(path)

    examples = read(settings.train_file)
    held_out = read(settings.eval_file) if settings.eval_file else None  # a bad file fails before training, not after
    options = TrainOptions(
        max_length=settings.max_length,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        epochs=settings.epochs,
        seed=settings.seed,
        bf16=settings.bf16,
        label_smoothing=settings.label_smoothing,
        freeze_layers=settings.freeze_layers,
    )
    report = fine_tune(settings.base_model, examples, settings.output_dir, options=options)
    record = {"train": asdict(report), "train_file": str(settings.train_file)}
    sections = {
        "Model": f"Fine-tuned from `{report.base_model}` for sequence classification over {report.labels}.",
        "Data": f"{report.train_examples} labelled texts from `{settings.train_file}`.",
    }
    if settings.pair_field:
        paired = sum(getattr(e, "text_pair", None) is not None for e in examples)
        record["pair_field"] = settings.pair_field
        sections["Data"] += (f" {paired} of them with a second segment (column `{settings.pair_field}`), read as "
                             "a text pair: serve them with `text_pair`.")
    if settings.eval_file:
        from training.evaluate import evaluate_model, format_report

        evaluation = evaluate_model(settings.output_dir, held_out)
        print(format_report(evaluation))
        record["evaluation"] = evaluation
        sections["Evaluation"] = f"On `{settings.eval_file}`:\n\n```\n{format_report(evaluation)}\n```"
    write_model_card(settings.output_dir, f"Sentiment classifier ({Path(settings.output_dir).name})", sections, record)
    print(f"wrote {settings.output_dir} in {report.seconds:.0f}s ({report.steps} steps)")


if __name__ == "__main__":
    main()
