"""The cost of one explanation on the built-in model: forward passes and milliseconds, by steps, beside
one plain forward pass of the same text, in one process (the fastest of --repeats runs).

    python -m bench.explain_cost [--out bench/results/explain-cost.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from server.builtin_model import builtin_model_dir
from server.explain import Explainer, float32_model
from server.model import SequenceClassifier

SENTENCES = {
    "short": "The battery lasts all day",
    "review": ("I expected to hate this film, but the acting is superb and the ending left the whole cinema in "
               "tears. A little long in the middle, yet worth every minute."),
}


def timed(fn, repeats: int) -> tuple[float, object]:
    """The fastest of ``repeats`` runs, in ms: on a shared machine the others measure the neighbours."""
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - started)
    return min(timings) * 1000, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/explain-cost.json"))
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    classifier = SequenceClassifier(str(builtin_model_dir()), device="cpu", dtype="float32")
    explainer = Explainer(float32_model(classifier), classifier.tokenizer, max_tokens=classifier.max_tokens,
                          max_batch_tokens=8192)
    rows = []
    for name, text in SENTENCES.items():
        forward_ms, _ = timed(lambda: explainer.predict_logits(text), args.repeats)
        for steps in args.steps:
            explainer.explain(text, target=None, steps=steps)  # warm-up
            ms, explanation = timed(lambda: explainer.explain(text, target=None, steps=steps), args.repeats)
            rows.append({"text": name, "tokens": explanation.num_tokens, "steps": steps,
                         "forward_passes": explanation.forward_passes, "ms": round(ms, 1),
                         "one_forward_pass_ms": round(forward_ms, 2),
                         "convergence_delta": round(explanation.convergence_delta, 4),
                         "words": [(w.word, round(w.attribution, 3)) for w in explanation.words],
                         "target": classifier.labels[explanation.target]})
            print(f"{name:<7} {explanation.num_tokens:>3} tokens  {steps:>3} steps  {explanation.forward_passes:>3} "
                  f"rows  {ms:7.1f} ms  (one forward {forward_ms:.1f} ms)  delta {explanation.convergence_delta:+.4f}")
    result = {"model": classifier.source, "dtype": "float32", "torch_threads": torch.get_num_threads(),
              "results": rows, "command": "python -m bench.explain_cost"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
