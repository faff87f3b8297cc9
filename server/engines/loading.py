"""Loading a Hugging Face sequence-classification checkpoint safely: safetensors only, no remote code, the
weights in float32 whatever dtype they were saved in (engines convert them as they need), and the facts
every layer reads (labels, head kind, token limit, a hash of the weights)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from server.engines.heads import problem_type
from server.errors import ModelLoadError


def check_safe_weights(source: str) -> None:
    path = Path(source)
    if not path.is_dir():
        return  # a hub id: from_pretrained(use_safetensors=True) refuses pickle-only repos itself
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        found = f" (found only {', '.join(pickles)})" if pickles else ""
        raise ModelLoadError(
            f"{source} has no .safetensors weights{found}; pickle checkpoints can run arbitrary code and are "
            "refused. Convert it with: model.save_pretrained(dir, safe_serialization=True)"
        )


def weights_sha256(model: torch.nn.Module) -> str:
    """A content hash of the weights as loaded (name, dtype, shape, bytes), independent of file layout."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the float32 torch model (eval mode), its fast tokenizer, and its facts."""

    source: str
    model: torch.nn.Module
    tokenizer: object  # transformers' fast tokenizer
    labels: list[str]
    problem_type: str  # server.engines.heads: single-label, multi-label or regression
    max_tokens: int  # the model's own limit, or less when asked
    weights_sha256: str

    @property
    def config(self):
        return self.model.config


def load_checkpoint(source: str, max_tokens: int | None = None) -> Checkpoint:
    """``source``: a directory or a hub id; ``ModelLoadError`` when it is not a safe sequence classifier."""
    check_safe_weights(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, use_safetensors=True, trust_remote_code=False, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a sequence classifier from {source!r}: {exc}") from exc
    if not tokenizer.is_fast:
        raise ModelLoadError(f"{source!r} has no fast (Rust) tokenizer")
    model.eval()
    config = model.config
    limit = min(tokenizer.model_max_length, config.max_position_embeddings)
    return Checkpoint(
        source=source, model=model, tokenizer=tokenizer, labels=[str(config.id2label[i]) for i in range(config.num_labels)],
        problem_type=problem_type(config), max_tokens=min(limit, max_tokens) if max_tokens else limit,
        weights_sha256=weights_sha256(model),
    )
