"""Where the project's built-in sentiment model lives: shipped in the repository (``server/builtin``), and
rebuilt from its recipe by ``make model`` into the cache."""

from __future__ import annotations

import os
from pathlib import Path

# Bump when the recipe in training/builtin.py changes (its shipped weights change with it).
RECIPE_VERSION = "v5"

# The built-in model is fine-tuned on texts cut at this many tokens (training/builtin.py's Recipe), and
# reads long texts best in windows of the same size: on the held-out IMDB reviews, windows of 128 score
# 0.887 against 0.873 for windows of its 512-token limit, and 0.886 against 0.853 on reviews over 512
# tokens (recipe v2; bench/results/long-texts.json, `python -m bench.long_texts`). So it is the built-in model's
# default window for truncation "chunk".
TRAINED_MAX_TOKENS = 128

# The built model as the repository ships it (float16 safetensors, tokenizer, config, model card): what
# `--model builtin` serves, so that a fresh clone answers without training.
SHIPPED_DIR = Path(__file__).with_name("builtin")


def cache_root() -> Path:
    """``$SENTIMENT_MODEL_CACHE``, or ``sentiment-service`` under ``$XDG_CACHE_HOME`` (``~/.cache``): rebuilt
    models under ``models/``, exported engines under ``engines/``."""
    root = os.environ.get("SENTIMENT_MODEL_CACHE")
    return Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sentiment-service"


def builtin_model_dir() -> Path:
    """The model ``--model builtin`` serves: the shipped one."""
    return SHIPPED_DIR


def built_model_dir() -> Path:
    """Where ``make model`` (``sentiment-build-model``) rebuilds the built-in model from its recipe."""
    return cache_root() / "models" / f"builtin-{RECIPE_VERSION}"


def is_built(path: Path | None = None) -> bool:
    path = path or builtin_model_dir()
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))
