"""Benchmark inputs: real short (about 12 words) and medium (about 60 words) texts, deterministic."""

from __future__ import annotations

import json
import random
from pathlib import Path

CACHE = Path(__file__).parent / ".models"


def benchmark_texts(kind: str, count: int = 512, seed: int = 0) -> list[str]:
    """Short texts are held-out tweets of 10-14 words; medium ones are the first 60 words of IMDB reviews.

    Kept in ``bench/.models/`` once drawn, so a machine without the corpora can run with a copied file."""
    cached = CACHE / f"texts-{kind}-{count}-{seed}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    from training.builtin import load_splits

    splits = load_splits()
    rng = random.Random(seed)
    if kind == "short":
        pool = [e.text for e in splits.held_out["tweets"] if 10 <= len(e.text.split()) <= 14]
    elif kind == "medium":
        pool = [" ".join(e.text.split()[:60]) for e in splits.held_out["imdb"] if len(e.text.split()) >= 60]
    else:
        raise ValueError(kind)
    texts = [rng.choice(pool) for _ in range(count)]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(texts))
    return texts
