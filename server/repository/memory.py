"""How much memory a model version will take, estimated before it is loaded, so that a load past
``--model-memory-mb`` is refused instead of pushing the process out of memory.

The estimate reads the checkpoint's safetensors headers (every tensor's shape, not its bytes) and its
config, and prices what the server builds from them for the engine and dtype the settings ask:

- the float32 checkpoint, always loaded (4 bytes a parameter; half that where torch serves bf16 or fp16
  with the model converted in place, plus a float32 copy for explanations);
- each engine built beside it: ONNX Runtime float32 (4 bytes a parameter), int8 (1) with its float32
  re-check, torch int8 (1), and with ``--engine auto`` every candidate it times (they are alive together
  while it times them: the estimate is the peak of a load, not what stays after);
- the activations of the largest batch (``--max-batch-tokens`` x the widest layer x 4 bytes, twice);
- a fixed part (tokenizer, thread pools, the runtime's arenas): ``FIXED_BYTES``, measured (README).

A hub id has no local header to read: its estimate is the fixed part only, and it says so.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from server.hardware import cpu_has_fast_bf16

FIXED_BYTES = 48 * 1024 * 1024
ACTIVATION_COPIES = 2


def parameter_count(source: str) -> int | None:
    """Parameters of a checkpoint directory, from its safetensors headers; None when there is none."""
    files = sorted(Path(source).glob("*.safetensors")) if Path(source).is_dir() else []
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        for name, tensor in header.items():
            if name != "__metadata__":
                count = 1
                for dim in tensor["shape"]:
                    count *= dim
                total += count
    return total


def widest_layer(source: str) -> int:
    """The widest activation per token (the feed-forward layer), from config.json; 0 when unknown."""
    try:
        config = json.loads((Path(source) / "config.json").read_text())
    except (OSError, ValueError):
        return 0
    return max(int(config.get("intermediate_size") or 0), 4 * int(config.get("hidden_size") or 0))


def bytes_per_parameter(engine: str, dtype: str, *, cuda: bool, explains: bool) -> float:
    """What the loaded copies of the weights take, per parameter, for ``--engine`` and ``--dtype``."""
    half = dtype in ("bfloat16", "float16") or (dtype == "auto" and cuda)
    if engine == "torch" or cuda:
        if half:
            return 2 + (4 if explains else 0)  # converted in place; explanations load a float32 copy
        return 4 + (1 if dtype == "int8" else 0)
    onnx = {"float32": 4, "int8": 1 + 4, "auto": 4 + 1}.get(dtype, 0)  # int8 is re-checked on float32
    if engine == "onnxruntime":
        return 4 + onnx
    torch_copies = {"auto": 2 + 4 if cpu_has_fast_bf16() else 0, "int8": 1}.get(dtype, 0)
    if dtype in ("bfloat16", "float16"):
        return 2 + (4 if explains else 0)
    return 4 + torch_copies + onnx


def estimate_bytes(source: str, *, engine: str, dtype: str, cuda: bool, explains: bool,
                   max_batch_tokens: int) -> int:
    """The estimated peak memory of one loaded version of the checkpoint at ``source``."""
    parameters = parameter_count(source) or 0
    weights = parameters * bytes_per_parameter(engine, dtype, cuda=cuda, explains=explains)
    activations = max_batch_tokens * widest_layer(source) * 4 * ACTIVATION_COPIES
    return int(weights + activations + FIXED_BYTES)


def resident_bytes() -> int:
    """This process's resident memory now (Linux), for the log line that compares it with the estimate."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")
