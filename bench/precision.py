"""What bf16 and dynamic int8 do to the built-in model: label agreement with fp32 on the held-out split,
held-out accuracy, and offline speed, all in one process. Writes bench/results/precision-<device>.md.

    python -m bench.precision
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.run import RESULTS, machine
from server.model import SequenceClassifier
from training.builtin import LABELS, ensure_built, load_splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "int8"])
    args = parser.parse_args(argv)
    model_dir = ensure_built()
    splits = load_splits()
    examples = splits.held_out["tweets"] + splits.held_out["rotten_tomatoes"]
    texts = [e.text for e in examples]
    truth = np.array([LABELS.index(e.label) for e in examples])
    results = {}
    for dtype in args.dtypes:
        classifier = SequenceClassifier(str(model_dir), device=args.device, dtype=dtype)
        classifier.predict_logits(texts[:64])  # warm-up
        started = time.perf_counter()
        logits = classifier.predict_logits(texts, batch_size=32)
        seconds = time.perf_counter() - started
        predicted = logits.argmax(axis=1)
        binary = np.array([e.label != "neutral" for e in examples])
        binary_pred = logits[:, [0, 2]].argmax(axis=1) * 2
        correct = np.where(binary, binary_pred == truth, predicted == truth)
        results[dtype] = {"labels": predicted, "logits": logits, "texts_per_s": len(texts) / seconds,
                          "accuracy": float(correct.mean())}
    base = results["float32"]
    lines = [f"# Precision: built-in model on {args.device}", "",
             f"Machine: {machine()}. {len(texts)} held-out texts (tweets, 3 classes, and Rotten Tomatoes, "
             f"scored as negative-vs-positive). Command: `python -m bench.precision`.", "",
             "| dtype | texts/s (offline, batch 32) | speed vs fp32 | label agreement with fp32 | max abs logit diff | held-out accuracy |",
             "|---|---|---|---|---|---|"]
    for dtype, r in results.items():
        lines.append(f"| {dtype} | {r['texts_per_s']:.1f} | {r['texts_per_s'] / base['texts_per_s']:.2f}x | "
                     f"{(r['labels'] == base['labels']).mean():.4f} | {np.abs(r['logits'] - base['logits']).max():.3f} | "
                     f"{r['accuracy']:.4f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"precision-{args.device}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
