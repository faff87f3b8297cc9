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
from server.engines.explainer import Explainer, float32_model
from server.core.classifier import SequenceClassifier

SENTENCES = {
    "short": "The battery lasts all day",
    "review": ("I expected to hate this film, but the acting is superb and the ending left the whole cinema in "
               "tears. A little long in the middle, yet worth every minute."),
}


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """The fastest of ``repeats`` runs in ms, as wall time and as this thread's CPU time. With one torch
    thread every op runs on the calling thread, so the CPU time is the work itself even on a machine
    shared with other jobs (where wall time also measures the neighbours)."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return min(walls) * 1000, min(cpus) * 1000, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/explain-cost.json"))
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is the work itself)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    classifier = SequenceClassifier(str(builtin_model_dir()), device="cpu", dtype="float32")
    explainer = Explainer(float32_model(classifier.model, classifier.source, classifier.device),
                          pad_token_id=classifier.tokenizer.pad_token_id, max_batch_tokens=8192)
    rows = []
    for name, text in SENTENCES.items():
        encoding = classifier.tokenizer.for_explanation(text)
        forward_ms, forward_cpu_ms, _ = timed(lambda: classifier.predict_logits([text]), args.repeats)
        for steps in args.steps:
            explainer.explain(text, encoding, target=None, steps=steps)  # warm-up
            ms, cpu_ms, explanation = timed(lambda: explainer.explain(text, encoding, target=None, steps=steps),
                                            args.repeats)
            rows.append({"text": name, "tokens": len(encoding.input_ids), "steps": steps,
                         "forward_passes": explanation.forward_passes, "ms": round(ms, 1), "cpu_ms": round(cpu_ms, 1),
                         "one_forward_pass_ms": round(forward_ms, 2), "one_forward_pass_cpu_ms": round(forward_cpu_ms, 2),
                         "convergence_delta": round(explanation.convergence_delta, 4),
                         "words": [(w.word, round(w.attribution, 3)) for w in explanation.words],
                         "target": classifier.labels[explanation.target]})
            print(f"{name:<7} {len(encoding.input_ids):>3} tokens  {steps:>3} steps  {explanation.forward_passes:>3} rows  "
                  f"{ms:7.1f} ms ({cpu_ms:7.1f} ms CPU)  one forward {forward_ms:.1f} ms ({forward_cpu_ms:.1f} CPU)  "
                  f"delta {explanation.convergence_delta:+.4f}")
    result = {"model": classifier.source, "dtype": "float32", "torch_threads": torch.get_num_threads(),
              "results": rows, "command": "python -m bench.explain_cost"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
