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

from server.engines import heads
from server.engines import Engine, describe, onnx_engine
from server.engines.recheck import RecheckedEngine, decision_margins, measured_margin
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


def rechecked_engine(engine: Engine) -> RecheckedEngine | None:
    """The re-checked int8 engine among those that serve (alone or on a route), if any."""
    for candidate in [route.engine for route in engine.routes] if isinstance(engine, RoutedEngine) else [engine]:
        if isinstance(candidate, RecheckedEngine):
            return candidate
    return None


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
    if isinstance(engine, RecheckedEngine):
        # a batch of one repeated token says nothing about how close its answers are: the fast pass, plus the
        # float32 pass at the share of texts expected to need it
        return (seconds_per_batch(engine.fast, size, width, token, repeats, warm)
                + engine.expected_fraction * seconds_per_batch(engine.exact, size, width, token, repeats, warm))
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


# The share of texts a re-checked engine is assumed to run twice when auto times it, unless the calibration
# sentences (written to be clear-cut, so they re-check less than real traffic) measured more: on held-out
# tweets and reviews about a tenth of the built-in model's texts fall under the margin.
EXPECTED_RECHECK_FLOOR = 0.1


def with_recheck(fast: Engine, exact: Engine, problem_type: str, calibration: tuple[np.ndarray, np.ndarray],
                 margin: float | None) -> Engine:
    """``fast`` (int8) with its close calls re-run on ``exact`` (float32), under ``margin`` or, when None, the
    margin measured on the calibration batch (``server.engines.recheck``); ``fast`` alone when the margin is
    0 or the head has no labels to flip (regression)."""
    if margin == 0 or problem_type == heads.REGRESSION:
        return fast
    fast_logits, exact_logits = fast.run(*calibration), exact.run(*calibration)
    if margin is None:
        margin = measured_margin(fast_logits, exact_logits, problem_type)
    engine = RecheckedEngine(fast, exact, margin, problem_type)
    calibration_share = float((decision_margins(fast_logits, problem_type) < margin).mean())
    engine.expected_fraction = max(EXPECTED_RECHECK_FLOOR, calibration_share)
    log.info("%s (calibration: %.0f%% of sentences under the margin)", engine.describe(), 100 * calibration_share)
    return engine


def torch_candidates(model: torch.nn.Module, device: torch.device, dtype: str,
                     calibration: tuple[np.ndarray, np.ndarray], problem_type: str = heads.SINGLE_LABEL,
                     recheck_margin: float | None = None) -> list[Engine]:
    if dtype == "int8":
        if device.type != "cpu":
            raise ModelLoadError("--dtype int8 (dynamic quantization) runs on the CPU only")
        return [with_recheck(TorchEngine(quantize_int8(model, calibration), device, "int8"),
                             TorchEngine(model, device, "float32"), problem_type, calibration, recheck_margin)]
    dtypes = dtype_candidates(dtype, device)
    if len(dtypes) == 1:
        return [TorchEngine(model.to(device=device, dtype=dtypes[0]), device, dtypes[0])]
    return [TorchEngine(copy.deepcopy(model).to(device=device, dtype=d), device, d) for d in dtypes]


def onnx_variant(dtype: str) -> str | None:
    """The ONNX Runtime variant for a dtype request; None where the engine has none (bf16, fp16)."""
    return {"auto": "float32", "float32": "float32", "int8": "int8"}.get(dtype)


def select_engine(*, requested: str, model: torch.nn.Module, source: str, weights_sha256: str, device: torch.device,
                  dtype: str, cache_dir: Path, threads: int, timing_token: int, calibration: tuple[np.ndarray, np.ndarray],
                  max_batch_size: int = 32, problem_type: str = heads.SINGLE_LABEL,
                  recheck_margin: float | None = None) -> Engine:
    """The engine that serves ``model``: ``requested`` is auto, torch or onnxruntime. ``calibration`` (input
    ids, attention mask of server.engines.quantization's sentences) chooses int8's weight scales and
    measures the re-check margin (``recheck_margin``: None measures it, 0 turns the re-check off).

    int8 is re-checked in float32 under the margin (``server.engines.recheck``); with ``--dtype auto`` on
    the CPU, ONNX Runtime's re-checked int8 is a candidate beside the float engines (not for regression
    heads, nor with the re-check off: int8 alone changes more labels than a default may)."""
    if requested == "onnxruntime":
        if device.type != "cpu":
            raise ModelLoadError("--engine onnxruntime runs on the CPU; use --engine torch (or auto) on CUDA")
        if onnx_variant(dtype) is None:
            raise ModelLoadError(f"--engine onnxruntime serves float32 or int8, not {dtype}")
    onnx: list[Engine] = []
    if requested in ("onnxruntime", "auto") and device.type == "cpu" and onnx_variant(dtype):
        try:
            onnx = onnx_candidates(source, weights_sha256, model.config, dtype, cache_dir, threads, calibration,
                                   problem_type, recheck_margin)
        except onnx_engine.EngineUnavailable as exc:
            log.warning("onnxruntime cannot serve this model (%s): falling back to torch", exc)
    sizes = sorted({s for s in TIMING_SIZES if s <= max_batch_size} | {max_batch_size})
    if requested == "onnxruntime" and onnx:
        return fastest_by_size(onnx, sizes, TIMING_WIDTH, timing_token)
    candidates = torch_candidates(model, device, dtype, calibration, problem_type, recheck_margin)
    if requested == "auto":
        candidates += onnx
    return fastest_by_size(candidates, sizes, TIMING_WIDTH, timing_token)


def onnx_candidates(source: str, weights_sha256: str, config, dtype: str, cache_dir: Path, threads: int,
                    calibration: tuple[np.ndarray, np.ndarray], problem_type: str,
                    recheck_margin: float | None) -> list[Engine]:
    """ONNX Runtime's engines for ``dtype``: float32; int8 re-checked on float32; and for auto both, unless
    the re-check is off or cannot apply (then float32 alone)."""
    load = lambda variant: onnx_engine.load(source, weights_sha256, config, variant, cache_dir, threads,  # noqa: E731
                                            calibration)
    rechecks = recheck_margin != 0 and problem_type != heads.REGRESSION
    if dtype == "int8":
        return [with_recheck(load("int8"), load("float32"), problem_type, calibration, recheck_margin) if rechecks
                else load("int8")]
    float32 = load("float32")
    if dtype != "auto" or not rechecks:
        return [float32]
    try:
        int8 = load("int8")
    except onnx_engine.EngineUnavailable as exc:  # float32 still serves; auto only loses a candidate
        log.warning("onnxruntime int8 is unavailable for this model (%s): timing the other engines", exc)
        return [float32]
    return [float32, with_recheck(int8, float32, problem_type, calibration, recheck_margin)]

