"""What the machine can do: CPU instruction sets and accelerators, and the device/dtype choice."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX-BF16 or AVX512-BF16, where oneDNN runs bf16 matmuls natively."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(requested)


def dtype_candidates(requested: str, device: torch.device) -> list[torch.dtype]:
    """What ``requested`` may become, best guess first. ``auto``: bf16 on CUDA cards that support it
    (else fp16); on CPUs with native bf16, bf16 or fp32, whichever runs the model faster (the loader
    times both); fp32 elsewhere."""
    if requested != "auto":
        return [DTYPES[requested]]
    if device.type == "cuda":
        return [torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16]
    return [torch.bfloat16, torch.float32] if cpu_has_fast_bf16() else [torch.float32]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
