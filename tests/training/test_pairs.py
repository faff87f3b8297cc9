"""Fine-tuning and evaluation on text pairs (``--pair-field``): a tiny model learns an aspect task whose label
only the pair decides, and the server reads the trained model's pairs exactly as training did."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

from server.core.classifier import SequenceClassifier
from tests.support.helpers import build_tiny_model
from training.data import read_labelled_file
from training.evaluate import evaluate_model
from training.evaluate import main as evaluate_main
from training.train import encode_pairs, read_paired_file
from training.train import main as train_main

ASPECTS = ("food", "service")
GOOD = ("good", "great")
BAD = ("bad", "awful")


def aspect_rows() -> list[tuple[str, str, str]]:
    """Every text praises one aspect and pans another; the pair names one of them, and only it decides the label:
    each text appears once as positive and once as negative, so a model that ignores the pair is at chance."""
    rows = []
    for (first, second), good, bad in itertools.product(itertools.permutations(ASPECTS, 2), GOOD, BAD):
        for one, other, praised in ((good, bad, first), (bad, good, second)):
            text = f"the {first} was {one} but the {second} was {other}"
            panned = second if praised == first else first
            rows += [(text, praised, "positive"), (text, panned, "negative")]
    return rows


ROWS = aspect_rows()


@pytest.fixture
def pair_file(tmp_path):
    path = tmp_path / "aspects.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "text_pair", "label"])
        writer.writerows(ROWS)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model fitted to the aspect rows through the command line (train and --eval-file both paired). Its
    dropout is off (config only): the random 2-layer model then learns the rows in a few hundred steps."""
    import torch

    folder = tmp_path_factory.mktemp("pairs")
    base = build_tiny_model(folder / "base")
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (base / "config.json").write_text(json.dumps(config))
    data = folder / "aspects.jsonl"
    data.write_text("".join(json.dumps({"text": t, "aspect": p, "label": l}) + "\n" for t, p, l in ROWS))
    out = folder / "model"
    threads = torch.get_num_threads()
    try:
        train_main(["--base-model", str(base), "--train-file", str(data), "--output-dir", str(out),
                    "--pair-field", "aspect", "--eval-file", str(data), "--epochs", "60", "--batch-size", "8",
                    "--learning-rate", "1e-3", "--seed", "1", "--bf16", "false", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    return out, data


def test_the_pair_column_is_read_and_a_blank_pair_means_a_single_text(tmp_path, pair_file):
    examples = read_paired_file(pair_file, "text_pair")
    assert [(e.text, e.text_pair, e.label) for e in examples] == ROWS
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"text": "i love this", "label": "positive", "aspect": "film"}\n'
                     '{"text": "bad day", "label": "negative", "aspect": "  "}\n'
                     '{"text": "fine", "label": "neutral", "aspect": null}\n{"text": "okay", "label": "neutral"}\n')
    assert [e.text_pair for e in read_paired_file(mixed, "aspect")] == ["film", None, None, None]
    # the plain reader is unchanged: the extra column is ignored
    assert [(e.text, e.label) for e in read_labelled_file(pair_file)] == [(t, l) for t, _, l in ROWS]


def test_a_pair_field_that_no_row_has_is_refused(pair_file):
    with pytest.raises(ValueError, match="no row has a 'aspect' value"):
        read_paired_file(pair_file, "aspect")


def test_training_encodes_pairs_as_the_server_does(tiny_model_dir):
    """Ids and segment ids of the training batches are the server's (Tokenizer.encode_pairs), a pair cut
    longest-first past the limit included; a row without a pair is today's single-text encoding."""
    served = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32")
    long_text = " ".join(["the food was good"] * 30)
    texts = [ROWS[0][0], long_text, "i love this film", "the service was bad"]
    pairs = [ROWS[0][1], "service", None, " ".join(["night"] * 80)]
    ids, types = encode_pairs(served.tokenizer.hf, texts, pairs, served.max_tokens, segments=True)
    server = served.tokenizer.encode_pairs(texts, pairs)
    assert ids == [e.input_ids for e in server]
    assert [t for t, p in zip(types, pairs) if p] == [e.token_type_ids for e, p in zip(server, pairs) if p]
    assert types[2] == [0] * len(ids[2]) and set(types[0]) == {0, 1}
    assert server[1].truncated and server[3].truncated and len(ids[1]) == len(ids[3]) == served.max_tokens
    plain = served.tokenizer.hf(["i love this film"], truncation=True, max_length=served.max_tokens)["input_ids"]
    assert ids[2] == plain[0]


def test_a_model_trained_on_pairs_learns_what_the_pair_asks(trained, capsys):
    out, data = trained
    card = (out / "README.md").read_text()
    assert '"pair_field": "aspect"' in card and "text_pair" in card
    metrics = evaluate_model(out, read_paired_file(data, "aspect"))
    # every text is once positive and once negative: without the pair, 50% is the best a model can do
    assert metrics["accuracy"] >= 0.9, metrics
    # read without its pairs, the same rows are at chance at best
    plain = evaluate_model(out, read_labelled_file(data))
    assert plain["accuracy"] <= 0.5 + 1e-9
    metrics_json = out.parent / "metrics.json"
    evaluate_main(["--model", str(out), "--data-file", str(data), "--pair-field", "aspect",
                   "--output-json", str(metrics_json)])
    assert json.loads(metrics_json.read_text())["accuracy"] == metrics["accuracy"]
    assert "accuracy" in capsys.readouterr().out


def test_the_server_reads_a_trained_pair_model_as_the_model_itself_does(trained):
    """The serving core's logits for (text, text_pair) are the checkpoint's own on tokenizer(text, pair)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, _ = trained
    served = SequenceClassifier(str(out), device="cpu", dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    cases = [(ROWS[0][0], ROWS[0][1]), (ROWS[1][0], ROWS[1][1]), (ROWS[-1][0], ROWS[-1][1]), ("i love this film", None)]
    texts, pairs = [t for t, _ in cases], [p for _, p in cases]
    core = served.forward(served.tokenizer.encode_pairs(texts, pairs))
    for row, (text, pair) in enumerate(cases):
        with torch.no_grad():
            direct = model(**tokenizer(text, pair, return_tensors="pt")).logits[0].numpy()
        np.testing.assert_allclose(core[row], direct, atol=1e-5)
    # the same text with its two aspects: opposite answers, as trained
    first, second = ROWS[0], ROWS[1]
    assert first[0] == second[0] and first[2] != second[2]
    labels = [served.labels[i] for i in core[:2].argmax(axis=1)]
    assert labels == [first[2], second[2]]


def test_a_csv_mixing_pairs_and_plain_rows_trains_and_evaluates(tmp_path, tiny_model_dir, capsys):
    """The README's example file: aspect rows and one row without an aspect (a blank pair, a single text)."""
    data = tmp_path / "aspects.csv"
    data.write_text("text,text_pair,label\n"
                    "The screen is great but the battery dies by noon,battery,negative\n"
                    "The screen is great but the battery dies by noon,screen,positive\n"
                    '"Friendly staff, cold food",staff,positive\n"Friendly staff, cold food",food,negative\n'
                    "Arrived on time,,positive\n")
    out = tmp_path / "model"
    train_main(["--base-model", str(tiny_model_dir), "--train-file", str(data), "--output-dir", str(out),
                "--pair-field", "text_pair", "--eval-file", str(data), "--epochs", "2", "--batch-size", "2"])
    assert "examples 5" in capsys.readouterr().out
    assert "4 of them with a second segment (column `text_pair`)" in (out / "README.md").read_text()
