"""What each engine and dtype does to the built-in model: label agreement with torch fp32 on the
held-out split, held-out accuracy, and offline speed, all in one process. Writes
bench/results/precision-<device>.md (and .json).

    python -m bench.precision
    python -m bench.precision --variants torch:float32 onnxruntime:int8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.run import RESULTS, machine
from server.model import SequenceClassifier
from training.builtin import LABELS, ensure_built, load_splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="engine:dtype pairs (default: every engine and dtype this device runs; the first is the reference)")
    args = parser.parse_args(argv)
    variants = [tuple(v.split(":")) for v in args.variants] if args.variants else default_variants(args.device)
    model_dir = ensure_built()
    splits = load_splits()
    examples = splits.held_out["tweets"] + splits.held_out["rotten_tomatoes"]
    texts = [e.text for e in examples]
    truth = np.array([LABELS.index(e.label) for e in examples])
    results = {}
    for engine, dtype in variants:
        classifier = SequenceClassifier(str(model_dir), device=args.device, dtype=dtype, engine=engine)
        classifier.predict_logits(texts[:64])  # warm-up
        started = time.perf_counter()
        logits = classifier.predict_logits(texts, batch_size=32)
        seconds = time.perf_counter() - started
        predicted = logits.argmax(axis=1)
        binary = np.array([e.label != "neutral" for e in examples])
        binary_pred = logits[:, [0, 2]].argmax(axis=1) * 2
        correct = np.where(binary, binary_pred == truth, predicted == truth)
        results[f"{engine} {dtype}"] = {"labels": predicted, "logits": logits, "texts_per_s": len(texts) / seconds,
                                        "accuracy": float(correct.mean())}
    base = next(iter(results.values()))
    lines = [f"# Precision: built-in model on {args.device}", "",
             f"Machine: {machine()}. {len(texts)} held-out texts (tweets, 3 classes, and Rotten Tomatoes, "
             f"scored as negative-vs-positive). Reference: {next(iter(results))}. Command: `python -m bench.precision`.", "",
             "| engine and dtype | texts/s (offline, batch 32) | speed vs reference | labels changed | max abs logit diff | "
             "held-out accuracy | accuracy change (points) |",
             "|---|---|---|---|---|---|---|"]
    summary = {}
    for name, r in results.items():
        changed = float((r["labels"] != base["labels"]).mean())
        summary[name] = {"texts_per_s": round(r["texts_per_s"], 1), "labels_changed": changed,
                         "accuracy": r["accuracy"], "accuracy_change_points": round((r["accuracy"] - base["accuracy"]) * 100, 2)}
        lines.append(f"| {name} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base['texts_per_s']:.2f}x | "
                     f"{changed * 100:.2f}% | {np.abs(r['logits'] - base['logits']).max():.3f} | "
                     f"{r['accuracy']:.4f} | {(r['accuracy'] - base['accuracy']) * 100:+.2f} |")
    lines += ["", "A dtype may become a default only if it changes under 0.5% of labels and held-out accuracy stays within "
              "0.3 points of the reference."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"precision-{args.device}.md"
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "texts": len(texts), "variants": summary}, indent=2))
    print("\n".join(lines))


def default_variants(device: str) -> list[tuple[str, str]]:
    """torch fp32 first (the reference), then what else the device runs: bf16 where the CPU has it
    natively, and both engines' int8 and ONNX Runtime's fp32 on the CPU."""
    from server.hardware import cpu_has_fast_bf16

    if device != "cpu":
        return [("torch", "float32"), ("torch", "bfloat16"), ("torch", "float16")]
    variants = [("torch", "float32"), ("onnxruntime", "float32"), ("onnxruntime", "int8"), ("torch", "int8")]
    return variants[:1] + ([("torch", "bfloat16")] if cpu_has_fast_bf16() else []) + variants[1:]


if __name__ == "__main__":
    main()
