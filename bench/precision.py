"""What each engine and dtype does to the built-in model: label agreement with torch fp32 on the
held-out split, held-out accuracy, and offline speed, all in one process. Writes
bench/results/precision-<device>.md (and .json).

    python -m bench.precision
    python -m bench.precision --variants torch:float32 onnxruntime:int8 onnxruntime:int8:0

A variant is engine:dtype[:re-check margin]; int8 is re-checked in float32 under the margin it measures
at load unless the margin is given (0: plain int8). ``auto:auto`` is what the server serves by default.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.run import RESULTS, machine
from server.engines.recheck import rechecked_among
from server.engines.heads import softmax
from server.core.classifier import SequenceClassifier
from server.builtin_model import builtin_model_dir
from training.builtin import LABELS, load_splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="engine:dtype[:re-check margin] (default: every engine and dtype this device runs, int8 with "
                             "and without the re-check, and auto; the first is the reference)")
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variants] if args.variants else default_variants(args.device)
    model_dir = builtin_model_dir()
    splits = load_splits()
    examples = splits.held_out["tweets"] + splits.held_out["rotten_tomatoes"]
    texts = [e.text for e in examples]
    truth = np.array([LABELS.index(e.label) for e in examples])
    results = {}
    for engine, dtype, margin in variants:
        classifier = SequenceClassifier(str(model_dir), device=args.device, dtype=dtype, engine=engine,
                                        recheck_margin=margin)
        classifier.predict_logits(texts[:64])  # warm-up
        rechecked = rechecked_among(classifier.engine)
        counted = rechecked.counts() if rechecked else (0, 0)
        started = time.perf_counter()
        logits = classifier.predict_logits(texts, batch_size=32)
        seconds = time.perf_counter() - started
        share = (rechecked.counts()[1] - counted[1]) / len(texts) if rechecked else 0.0
        predicted = logits.argmax(axis=1)
        binary = np.array([e.label != "neutral" for e in examples])
        binary_pred = logits[:, [0, 2]].argmax(axis=1) * 2
        correct = np.where(binary, binary_pred == truth, predicted == truth)
        results[variant_name(engine, dtype, classifier, rechecked)] = {
            "labels": predicted, "logits": logits, "texts_per_s": len(texts) / seconds, "accuracy": float(correct.mean()),
            "rechecked": share}
    base = next(iter(results.values()))
    lines = [f"# Precision: built-in model on {args.device}", "",
             f"Machine: {machine()}. {len(texts)} held-out texts (tweets, 3 classes, and Rotten Tomatoes, "
             f"scored as negative-vs-positive). Reference: {next(iter(results))}. Command: `python -m bench.precision`.", "",
             "| engine and dtype | texts/s (offline, batch 32) | speed vs reference | labels changed | max abs logit diff | "
             "max score diff | held-out accuracy | accuracy change (points) | texts re-checked |",
             "|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for name, r in results.items():
        changed = float((r["labels"] != base["labels"]).mean())
        rechecked_cell = f"{r['rechecked'] * 100:.1f}%" if r["rechecked"] else "-"
        score_diff = float(np.abs(softmax(r["logits"]) - softmax(base["logits"])).max())
        summary[name] = {"texts_per_s": round(r["texts_per_s"], 1), "labels_changed": changed,
                         "labels_changed_count": int((r["labels"] != base["labels"]).sum()),
                         "max_score_diff": round(score_diff, 4), "rechecked": round(r["rechecked"], 4),
                         "accuracy": r["accuracy"], "accuracy_change_points": round((r["accuracy"] - base["accuracy"]) * 100, 2)}
        lines.append(f"| {name} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base['texts_per_s']:.2f}x | "
                     f"{changed * 100:.2f}% | {np.abs(r['logits'] - base['logits']).max():.3f} | {score_diff:.3f} | "
                     f"{r['accuracy']:.4f} | {(r['accuracy'] - base['accuracy']) * 100:+.2f} | "
                     f"{rechecked_cell} |")
    lines += ["", "A dtype may become a default only if it changes under 0.5% of labels and held-out accuracy stays within "
              "0.3 points of the reference."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"precision-{args.device}.md"
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "texts": len(texts), "variants": summary}, indent=2))
    print("\n".join(lines))


def parse_variant(text: str) -> tuple[str, str, float | None]:
    engine, dtype, *margin = text.split(":")
    return engine, dtype, float(margin[0]) if margin else None


def variant_name(engine: str, dtype: str, classifier, rechecked) -> str:
    served = f"{classifier.engine_name} {classifier.dtype_name}"
    if rechecked is not None:
        served += f", float32 re-check under {rechecked.margin:.3f}"
    return f"auto ({served})" if engine == "auto" else served


def default_variants(device: str) -> list[tuple[str, str, float | None]]:
    """torch fp32 first (the reference), then what else the device runs: bf16 where the CPU has it
    natively; on the CPU ONNX Runtime's fp32, and both engines' int8 with the float32 re-check and without
    it (margin 0); then what auto serves."""
    from server.hardware import cpu_has_fast_bf16

    if device != "cpu":
        return [("torch", "float32", None), ("torch", "bfloat16", None), ("torch", "float16", None)]
    variants = [("torch", "float32", None)] + ([("torch", "bfloat16", None)] if cpu_has_fast_bf16() else [])
    return variants + [("onnxruntime", "float32", None), ("onnxruntime", "int8", 0.0), ("onnxruntime", "int8", None),
                       ("torch", "int8", 0.0), ("torch", "int8", None), ("auto", "auto", None)]


if __name__ == "__main__":
    main()
