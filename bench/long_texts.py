"""What reading long texts whole does to accuracy: the built-in model on the held-out IMDB reviews,
each read cut at 128 and at 512 tokens, and whole in windows of 128, 256 and 512 tokens (overlap a
quarter), combined as the server combines them (``server.core.chunking``).

    python -m bench.long_texts [--out bench/results/long-texts.json]

Movie reviews are negative or positive, so (as in the model card) the answer is the more probable of
those two. Reviews are reported by length: all, longer than 128 tokens, longer than 512.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from server.core import chunking
from server.engines import heads
from server.builtin_model import builtin_model_dir
from server.core.classifier import SequenceClassifier

WINDOWS = (128, 256, 512)


def window_outputs(classifier: SequenceClassifier, texts: list[str], window: int, token_budget: int = 8192):
    """Every text's windows and their softmax rows, batched by length."""
    plan = chunking.WindowPlan.for_model(classifier.max_tokens, 2, window, None, max_windows=10_000)
    groups = chunking.split(classifier.tokenizer, texts, plan)
    flat = [(t, w) for t, group in enumerate(groups) for w in group]
    order = sorted(range(len(flat)), key=lambda i: flat[i][1].encoding.num_tokens)
    rows = np.zeros((len(flat), len(classifier.labels)), dtype=np.float64)
    batch: list[int] = []
    for i in order + [None]:
        if batch and (i is None or (len(batch) + 1) * flat[i][1].encoding.num_tokens > token_budget):
            rows[batch] = heads.softmax(classifier.forward([flat[j][1].encoding for j in batch]))
            batch = []
        if i is not None:
            batch.append(i)
    per_text = [[] for _ in texts]
    for (t, window_), row in zip(flat, rows):
        per_text[t].append((window_, row))
    return per_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/long-texts.json"))
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--limit", type=int, default=0, help="only the first N held-out reviews (0: all)")
    args = parser.parse_args(argv)

    from training.builtin import BINARY, load_splits

    started = time.perf_counter()
    classifier = SequenceClassifier(str(builtin_model_dir()), device="cpu", dtype=args.dtype)
    reviews = load_splits().held_out["imdb"]
    if args.limit:
        reviews = reviews[: args.limit]
    texts = [r.text for r in reviews]
    truth = np.array([BINARY.index(r.label) for r in reviews])
    tokens = np.array([len(ids) + 2 for ids in classifier.tokenizer(texts, add_special_tokens=False)["input_ids"]])
    columns = [classifier.labels.index(name) for name in BINARY]

    answers: dict[str, np.ndarray] = {}
    windows_read: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}
    for window in WINDOWS:
        per_text = window_outputs(classifier, texts, window)
        scores[f"cut {window}"] = np.array([group[0][1] for group in per_text])
        scores[f"chunk {window}"] = np.array([chunking.token_weighted_mean(np.array([r for _, r in g]), [w for w, _ in g])
                                              for g in per_text])
        cut = np.array([group[0][1][columns] for group in per_text])
        weighted = np.array([chunking.token_weighted_mean(np.array([r for _, r in g]), [w for w, _ in g])[columns]
                             for g in per_text])
        plain = np.array([np.mean([r for _, r in g], axis=0)[columns] for g in per_text])
        last = np.array([g[-1][1][columns] for g in per_text])
        answers[f"cut at {window}"] = cut.argmax(axis=1)
        answers[f"chunk {window} (token-weighted mean, the default)"] = weighted.argmax(axis=1)
        answers[f"chunk {window} (plain mean)"] = plain.argmax(axis=1)
        answers[f"chunk {window} (last window only)"] = last.argmax(axis=1)
        windows_read[str(window)] = float(np.mean([len(g) for g in per_text]))

    subsets = {"all": tokens > 0, "over 128 tokens": tokens > 128, "over 512 tokens": tokens > 512}
    table = {}
    for name, mask in subsets.items():
        table[name] = {"reviews": int(mask.sum()),
                       **{mode: round(float((pred[mask] == truth[mask]).mean()), 4) for mode, pred in answers.items()}}
    # reviews over 512 tokens that the server's default reading (cut at 512) gets wrong and chunk gets right
    fixed = [i for i in np.argsort(tokens) if tokens[i] > 512
             and answers["cut at 512"][i] != truth[i] and answers["chunk 512 (token-weighted mean, the default)"][i] == truth[i]]
    examples = [{"index": int(i), "tokens": int(tokens[i]), "label": reviews[i].label,
                 "cut_512": dict(zip(classifier.labels, np.round(scores["cut 512"][i], 3).tolist())),
                 "chunk_512": dict(zip(classifier.labels, np.round(scores["chunk 512"][i], 3).tolist())),
                 "text": texts[i]} for i in fixed[:5]]
    result = {"model": classifier.source, "dtype": classifier.dtype_name, "held_out_imdb_reviews": len(reviews),
              "median_tokens": int(np.median(tokens)), "mean_windows_per_review": windows_read,
              "accuracy": table, "examples_fixed_by_chunking": examples, "seconds": round(time.perf_counter() - started, 1),
              "command": "python -m bench.long_texts"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "examples_fixed_by_chunking"}, indent=2))


if __name__ == "__main__":
    main()
