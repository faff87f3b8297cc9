"""Benchmark inputs: real short (about 12 words) and medium (about 60 words) texts, deterministic."""

from __future__ import annotations

import random


def benchmark_texts(kind: str, count: int = 512, seed: int = 0) -> list[str]:
    """Short texts are held-out tweets of 10-14 words; medium ones are the first 60 words of IMDB reviews."""
    from training.builtin import load_splits

    splits = load_splits()
    rng = random.Random(seed)
    if kind == "short":
        pool = [e.text for e in splits.held_out["tweets"] if 10 <= len(e.text.split()) <= 14]
    elif kind == "medium":
        pool = [" ".join(e.text.split()[:60]) for e in splits.held_out["imdb"] if len(e.text.split()) >= 60]
    else:
        raise ValueError(kind)
    return [rng.choice(pool) for _ in range(count)]
