"""Fine-tuning and evaluation, a few steps on the tiny model and a file the test writes."""

from __future__ import annotations

import json

import pytest

from server.core.classifier import SequenceClassifier
from tests.support.helpers import LABELS
from training.data import read_labelled_file
from training.evaluate import classification_metrics, format_report
from training.evaluate import main as evaluate_main
from training.train import main as train_main

ROWS = [("i love this film", "positive"), ("great good day", "positive"), ("awful terrible food", "negative"),
        ("i hate that movie", "negative"), ("it is okay", "neutral"), ("the day was fine", "neutral")] * 8


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in ROWS))
    return path


def test_metrics_are_computed_from_the_confusion_matrix():
    metrics = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion"] == [[1, 1], [0, 2]]
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert metrics["macro_f1"] == pytest.approx((0.6667 + 0.8) / 2, abs=1e-4)
    assert "confusion" in format_report(metrics)


def test_reads_csv_and_jsonl(tmp_path, train_file):
    csv_path = tmp_path / "data.csv"
    csv_path.write_text('text,label\n"hello, world",positive\nbad,negative\n')
    assert [(e.text, e.label) for e in read_labelled_file(csv_path)] == [("hello, world", "positive"), ("bad", "negative")]
    assert len(read_labelled_file(train_file)) == len(ROWS)


def test_train_command_writes_a_servable_model_with_card_and_is_deterministic(tmp_path, tiny_model_dir, train_file, capsys):
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / f"model-{run}"
        train_main(["--base-model", str(tiny_model_dir), "--train-file", str(train_file), "--output-dir", str(out),
                    "--epochs", "2", "--batch-size", "8", "--seed", "3", "--eval-file", str(train_file)])
        outputs.append(out)
    printed = capsys.readouterr().out
    assert "accuracy" in printed
    first, second = outputs
    assert (first / "model.safetensors").is_file() and (first / "tokenizer.json").is_file()
    config = json.loads((first / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    card = (first / "README.md").read_text()
    assert str(tiny_model_dir) in card and '"seed": 3' in card and "accuracy" in card
    served = SequenceClassifier(str(first), device="cpu", dtype="float32")
    assert served.labels == LABELS
    again = SequenceClassifier(str(second), device="cpu", dtype="float32")
    assert served.weights_sha256 == again.weights_sha256  # same seed, same model


def test_evaluate_command_prints_and_writes_json(tmp_path, tiny_model_dir, train_file, capsys):
    out = tmp_path / "metrics.json"
    evaluate_main(["--model", str(tiny_model_dir), "--data-file", str(train_file), "--output-json", str(out)])
    metrics = json.loads(out.read_text())
    assert metrics["examples"] == len(ROWS) and metrics["labels"] == LABELS
    assert sum(map(sum, metrics["confusion"])) == len(ROWS)
    assert "macro-F1" in capsys.readouterr().out


def test_candidate_masks_make_a_binary_example_a_two_class_loss():
    import torch

    from training.train import masked_cross_entropy

    logits = torch.tensor([[2.0, 5.0, 1.0], [0.5, 0.2, 0.1]])
    targets = torch.tensor([2, 0])
    masks = torch.tensor([[0.0, float("-inf"), 0.0], [0.0, 0.0, 0.0]])
    loss = masked_cross_entropy(logits, targets, masks)
    binary = torch.nn.functional.cross_entropy(logits[:1, [0, 2]], torch.tensor([1]))
    full = torch.nn.functional.cross_entropy(logits[1:], targets[1:])
    assert loss.item() == pytest.approx(((binary + full) / 2).item(), abs=1e-6)


def test_weights_and_label_smoothing_stay_within_each_rows_candidates():
    import torch

    from training.train import masked_cross_entropy

    logits = torch.tensor([[2.0, 5.0, 1.0], [0.5, 0.2, 0.1]])
    targets = torch.tensor([2, 0])
    masks = torch.tensor([[0.0, float("-inf"), 0.0], [0.0, 0.0, 0.0]])
    # smoothing over the binary row's two candidates only: finite, and equal to torch's on those columns
    smoothed = masked_cross_entropy(logits[:1], targets[:1], masks[:1], label_smoothing=0.2)
    expected = torch.nn.functional.cross_entropy(logits[:1, [0, 2]], torch.tensor([1]), label_smoothing=0.2)
    assert smoothed.item() == pytest.approx(expected.item(), abs=1e-6)
    # a weight of 3 on the second row is the same as that row appearing three times
    weighted = masked_cross_entropy(logits, targets, masks, weights=torch.tensor([1.0, 3.0]))
    repeated = masked_cross_entropy(logits[[0, 1, 1, 1]], targets[[0, 1, 1, 1]], masks[[0, 1, 1, 1]])
    assert weighted.item() == pytest.approx(repeated.item(), abs=1e-6)


def test_distillation_follows_the_teacher_within_each_rows_candidates():
    import torch

    from training.train import masked_cross_entropy

    logits = torch.tensor([[2.0, 5.0, 1.0], [0.5, 0.2, 0.1]])
    targets = torch.tensor([2, 0])
    masks = torch.tensor([[0.0, float("-inf"), 0.0], [0.0, 0.0, 0.0]])
    # the binary row's teacher puts 0.2 on neutral, which it cannot be: renormalised over its two candidates
    teacher = torch.tensor([[0.2, 0.2, 0.6], [0.1, 0.3, 0.6]])
    full = masked_cross_entropy(logits, targets, masks, teacher=teacher, distill_weight=1.0)
    binary = torch.nn.functional.cross_entropy(logits[:1, [0, 2]], torch.tensor([[0.25, 0.75]]))
    three = torch.nn.functional.cross_entropy(logits[1:], teacher[1:])
    assert full.item() == pytest.approx(((binary + three) / 2).item(), abs=1e-6)
    # half and half: the mean of the label's loss and the teacher's
    labels_only = masked_cross_entropy(logits, targets, masks)
    half = masked_cross_entropy(logits, targets, masks, teacher=teacher, distill_weight=0.5)
    assert half.item() == pytest.approx(((labels_only + full) / 2).item(), abs=1e-6)
    # without a weight the teacher changes nothing
    assert masked_cross_entropy(logits, targets, masks, teacher=teacher).item() == labels_only.item()


def test_frozen_bottom_layers_keep_their_weights_and_the_rest_trains(tmp_path, tiny_model_dir, train_file):
    from safetensors.torch import load_file

    out = tmp_path / "frozen"
    train_main(["--base-model", str(tiny_model_dir), "--train-file", str(train_file), "--output-dir", str(out),
                "--epochs", "1", "--batch-size", "8", "--freeze-layers", "1", "--label-smoothing", "0.1"])
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    frozen = [k for k in before if k.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    trained = [k for k in before if k.startswith("bert.encoder.layer.1.") and k.endswith("weight")]
    assert frozen and trained
    assert all((before[k] == after[k]).all() for k in frozen)
    assert all(not (before[k] == after[k]).all() for k in trained)


def test_a_linear_probe_trains_the_head_alone_before_fine_tuning(tmp_path, tiny_model_dir):
    """probe_epochs (LP-FT): the probe phase moves the new head and nothing of the encoder."""
    from safetensors.torch import load_file

    from training.data import Example
    from training.train import TrainOptions, fine_tune

    examples = [Example(t, l) for t, l in ROWS]
    # learning_rate 0: the fine-tuning phase changes nothing, so what moved, the probe moved
    for name, probe in (("plain", 0.0), ("probed", 1.0)):
        fine_tune(str(tiny_model_dir), examples, tmp_path / name, labels=LABELS, progress=False,
                  options=TrainOptions(batch_size=8, learning_rate=0.0, probe_epochs=probe, seed=3))
    base, plain, probed = (load_file(path / "model.safetensors") for path in
                           (tiny_model_dir, tmp_path / "plain", tmp_path / "probed"))
    encoder = [k for k in base if k.startswith("bert.")]
    assert encoder and all((base[k] == probed[k]).all() for k in encoder)
    head = [k for k in probed if k.startswith("classifier.")]
    assert head and any(not (plain[k] == probed[k]).all() for k in head)


def test_balanced_classes_carry_equal_weight_and_the_same_total():
    from training.builtin import balance_classes
    from training.data import Example

    rows = [Example("a", "negative", weight=1.0)] * 6 + [Example("b", "neutral", weight=0.5)] * 4 + [Example("c", "positive")] * 2
    balanced = balance_classes(rows)
    totals = {label: sum(e.weight for e in balanced if e.label == label) for label in ("negative", "neutral", "positive")}
    assert sum(totals.values()) == pytest.approx(sum(e.weight for e in rows))
    assert len({round(total, 9) for total in totals.values()}) == 1
    # within a class the agreement weights keep their ratios
    assert [e.weight for e in balanced[:6]] == [balanced[0].weight] * 6
