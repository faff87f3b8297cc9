"""Which engine serves: the one asked for, or with ``--engine auto`` the fastest measured here.

``auto`` times every candidate that fits the device and dtype on the same padded batches, at several
batch sizes (taking turns, best of three), and serves with the fastest overall, except at sizes where
another wins clearly (by ``ROUTE_MARGIN``): a model may be served by ONNX Runtime for small batches
and by torch bf16 for large ones, when that is what the machine says (at batch 1 ONNX Runtime's lower
per-call overhead wins, at batch 32 oneDNN's bf16 kernels can). Nothing is assumed from the CPU's
name: the timings decide, and the log says what they were.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from server.engines import Engine, describe
from server.engines import onnx_engine
from server.engines.torch_engine import TorchEngine, quantize_int8
from server.errors import ModelLoadError
from server.hardware import dtype_candidates

log = logging.getLogger(__name__)

# (batch size, width) shapes that auto times, smallest first; sizes above the largest use its winner
TIMING_SIZES = (1, 4, 16, 32)
TIMING_WIDTH = 24


@dataclass(frozen=True)
class Route:
    """Batches of at most ``max_size`` texts run on ``engine``."""

    max_size: int
    engine: Engine


class RoutedEngine:
    """Several engines, each serving the batch sizes it was measured fastest at."""

    def __init__(self, routes: list[Route]):
        self.routes = sorted(routes, key=lambda r: r.max_size)
        engines = list(dict.fromkeys(r.engine for r in self.routes))
        self.name = "+".join(e.name for e in engines)
        self.dtype = "+".join(e.dtype for e in engines)
        self.device = self.routes[0].engine.device

    def engine_for(self, batch_size: int) -> Engine:
        for route in self.routes:
            if batch_size <= route.max_size:
                return route.engine
        return self.routes[-1].engine

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.engine_for(len(input_ids)).run(input_ids, attention_mask)

    def describe(self) -> str:
        lower, parts = 1, []
        for route in self.routes:
            parts.append(f"{describe(route.engine)} for batches of {lower}-{route.max_size}")
            lower = route.max_size + 1
        return "; ".join(parts) + " and above"


def engine_for(engine: Engine, batch_size: int) -> Engine:
    """The engine that runs a batch of ``batch_size`` texts."""
    return engine.engine_for(batch_size) if isinstance(engine, RoutedEngine) else engine


# A batch size goes to an engine other than the fastest overall only when it wins there by this much:
# timings at load on a shared machine move by 10-15% from one moment to the next, and a route chosen by
# noise costs throughput for the life of the process (measured here: auto routing batches of 32 to torch
# fp32 on a load-time "win" the benchmark did not bear out: 106 texts/s where ONNX Runtime alone gave 148).
ROUTE_MARGIN = 0.15
TIMING_ROUNDS = 3


def seconds_per_batch(engine: Engine, size: int, width: int, token: int, repeats: int = 3, warm: bool = True) -> float:
    ids = np.full((size, width), token, dtype=np.int64)
    mask = np.ones_like(ids)
    if warm:
        engine.run(ids, mask)  # warm-up for this shape
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.run(ids, mask)
        timings.append(time.perf_counter() - started)
    return min(timings)


def time_candidates(candidates: list[Engine], sizes: list[int], width: int, token: int,
                    rounds: int = TIMING_ROUNDS) -> dict[int, list[float]]:
    """Best-of-``rounds`` seconds per batch of each candidate (by ``id``) at each size. The candidates take
    turns within every round, so a burst of other work on the machine falls on all of them alike
    rather than on whichever happened to be timed at that moment."""
    timed = {id(e): [float("inf")] * len(sizes) for e in candidates}
    for round_ in range(rounds):
        for i, size in enumerate(sizes):
            for engine in candidates:
                seconds = seconds_per_batch(engine, size, width, token, repeats=1, warm=round_ == 0)
                timed[id(engine)][i] = min(timed[id(engine)][i], seconds)
    return timed


def fastest_by_size(candidates: list[Engine], sizes: list[int], width: int, token: int) -> Engine:
    """Time every candidate at every size. The fastest overall (least time per text summed over the
    sizes) serves every size, except those where another wins by more than ``ROUTE_MARGIN``: one engine
    if none does, else a routed engine."""
    if len(candidates) == 1:
        return candidates[0]
    timed = time_candidates(candidates, sizes, width, token)
    log.info("engine auto (batch of N x %d tokens, ms): %s", width, "; ".join(
        f"{describe(e)}: " + ", ".join(f"{n}: {t * 1000:.1f}" for n, t in zip(sizes, timed[id(e)])) for e in candidates))
    primary = min(candidates, key=lambda e: sum(t / n for t, n in zip(timed[id(e)], sizes)))
    winners = []
    for i in range(len(sizes)):
        fastest = min(candidates, key=lambda e: timed[id(e)][i])
        clear_win = timed[id(fastest)][i] < (1 - ROUTE_MARGIN) * timed[id(primary)][i]
        winners.append(fastest if clear_win else primary)
    routes: list[Route] = []
    for size, winner in zip(sizes, winners):
        if routes and routes[-1].engine is winner:
            routes[-1] = Route(size, winner)
        else:
            routes.append(Route(size, winner))
    if len(routes) == 1:
        return routes[0].engine
    # a size between two measured sizes goes to the engine that won the smaller one
    return RoutedEngine([Route(r.max_size if i < len(routes) - 1 else max(sizes), r.engine) for i, r in enumerate(routes)])


def torch_candidates(model: torch.nn.Module, device: torch.device, dtype: str,
                     calibration: tuple[np.ndarray, np.ndarray]) -> list[Engine]:
    if dtype == "int8":
        if device.type != "cpu":
            raise ModelLoadError("--dtype int8 (dynamic quantization) runs on the CPU only")
        return [TorchEngine(quantize_int8(model, calibration), device, "int8")]
    dtypes = dtype_candidates(dtype, device)
    if len(dtypes) == 1:
        return [TorchEngine(model.to(device=device, dtype=dtypes[0]), device, dtypes[0])]
    return [TorchEngine(copy.deepcopy(model).to(device=device, dtype=d), device, d) for d in dtypes]


def onnx_variant(dtype: str) -> str | None:
    """The ONNX Runtime variant for a dtype request; None where the engine has none (bf16, fp16)."""
    return {"auto": "float32", "float32": "float32", "int8": "int8"}.get(dtype)


def select_engine(*, requested: str, model: torch.nn.Module, source: str, weights_sha256: str, device: torch.device,
                  dtype: str, cache_dir: Path, threads: int, timing_token: int, calibration: tuple[np.ndarray, np.ndarray],
                  max_batch_size: int = 32) -> Engine:
    """The engine that serves ``model``: ``requested`` is auto, torch or onnxruntime. ``calibration`` (input
    ids, attention mask of server.engines.quantization's sentences) chooses int8's weight scales."""
    if requested == "onnxruntime":
        if device.type != "cpu":
            raise ModelLoadError("--engine onnxruntime runs on the CPU; use --engine torch (or auto) on CUDA")
        if onnx_variant(dtype) is None:
            raise ModelLoadError(f"--engine onnxruntime serves float32 or int8, not {dtype}")
    onnx = None
    if requested in ("onnxruntime", "auto") and device.type == "cpu" and onnx_variant(dtype):
        try:
            onnx = onnx_engine.load(source, weights_sha256, model.config, onnx_variant(dtype), cache_dir, threads,
                                    calibration)
        except onnx_engine.EngineUnavailable as exc:
            log.warning("onnxruntime cannot serve this model (%s): falling back to torch", exc)
    if requested == "onnxruntime" and onnx is not None:
        return onnx
    candidates = torch_candidates(model, device, dtype, calibration)
    if requested == "auto" and onnx is not None:
        candidates.append(onnx)
    sizes = sorted({s for s in TIMING_SIZES if s <= max_batch_size} | {max_batch_size})
    return fastest_by_size(candidates, sizes, TIMING_WIDTH, timing_token)

