"""The raw model limit: offline batched throughput of the model in one process, no server.

Prints one JSON object: best texts/s over batch sizes (model forward on pre-tokenized, length-sorted
batches, on the thread that owns torch's thread pool), for an engine, the batch size that gave it, the p50 latency of
one bare forward pass of one text, and the process's peak RSS."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from bench.texts import benchmark_texts
from server.core.classifier import SequenceClassifier


def measure(model: str, kind: str, device: str, dtype: str, engine: str = "auto") -> dict:
    classifier = SequenceClassifier(model, device=device, dtype=dtype, engine=engine)
    on_gpu = classifier.device.type == "cuda"
    batch_sizes = (16, 64, 128, 256) if on_gpu else (8, 16, 32, 64)
    texts_per_size = 2048 if on_gpu else 192
    # sorted by length, as a careful offline job would batch them: the least padding, the best rate
    encodings = sorted(classifier.encode(benchmark_texts(kind, texts_per_size)), key=lambda e: e.num_tokens)
    rates = {}
    for size in batch_sizes:
        batches = [encodings[i : i + size] for i in range(0, len(encodings), size)]
        classifier.forward(batches[0])  # warm-up for this shape
        started = time.perf_counter()
        for batch in batches:
            classifier.forward(batch)
        rates[size] = len(encodings) / (time.perf_counter() - started)
    single = []
    for encoding in encodings[:: max(1, len(encodings) // 40)][:40]:  # one text at a time, across the lengths
        started = time.perf_counter()
        classifier.forward([encoding])
        single.append(time.perf_counter() - started)
    best = max(rates, key=rates.get)
    return {
        "texts_per_s": rates[best], "best_batch_size": best, "rates": rates,
        "single_forward_p50_ms": statistics.median(single[5:]) * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": classifier.device_name, "dtype": classifier.dtype_name, "engine": classifier.engine_name,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--kind", default="short")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--engine", default="auto", help="auto (what the server would serve with), torch or onnxruntime")
    args = parser.parse_args()
    print(json.dumps(measure(args.model, args.kind, args.device, args.dtype, args.engine)))


if __name__ == "__main__":
    main()
