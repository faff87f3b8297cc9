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
from server.builtin_model import cache_root
from server.engines import Engine, Route, onnx_engine
from server.engines.loading import Checkpoint
from server.engines.recheck import RecheckedEngine, decision_margins, measured_margin
from server.engines.torch_engine import TorchEngine, quantize_int8
from server.errors import ModelLoadError
from server.hardware import dtype_candidates

log = logging.getLogger(__name__)

# (batch size, width) shapes that auto times, smallest first; sizes above the largest use its winner
TIMING_SIZES = (1, 4, 16, 32)
TIMING_WIDTH = 24


class RoutedEngine(Engine):
    """Several engines, each serving the batch sizes it was measured fastest at."""

    def __init__(self, routes: list[Route]):
        self._routes = tuple(sorted(routes, key=lambda r: r.max_size))
        engines = list(dict.fromkeys(r.engine for r in self._routes))
        self.name = "+".join(e.name for e in engines)
        self.dtype = "+".join(e.dtype for e in engines)
        self.device = self._routes[0].engine.device
        self.model = next((e.model for e in engines if e.model is not None), None)

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._routes

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray,
            token_type_ids: np.ndarray | None = None) -> np.ndarray:
        engine = self.engine_for(len(input_ids))
        if token_type_ids is None:
            return engine.run(input_ids, attention_mask)
        return engine.run(input_ids, attention_mask, token_type_ids)

    def describe(self) -> str:
        lower, parts = 1, []
        for route in self._routes:
            parts.append(f"{route.engine.key} for batches of {lower}-{route.max_size}")
            lower = route.max_size + 1
        return "; ".join(parts) + " and above"


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
        f"{e.key}: " + ", ".join(f"{n}: {t * 1000:.1f}" for n, t in zip(sizes, timed[id(e)])) for e in candidates))
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


@dataclass(frozen=True)
class EngineChoice:
    """What is asked of the engine: ``engine`` auto, torch or onnxruntime; ``dtype`` (auto, float32, bfloat16,
    float16, int8); the batch sizes it serves; int8's re-check margin (None: measured, 0: off); where ONNX
    Runtime's exported files are cached; intra-op threads."""

    engine: str = "auto"
    dtype: str = "auto"
    device: torch.device = torch.device("cpu")
    max_batch_size: int = 32
    recheck_margin: float | None = None
    cache_dir: Path | None = None
    threads: int | None = None


def select_engine(checkpoint: Checkpoint, choice: EngineChoice, calibration: tuple[np.ndarray, np.ndarray]) -> Engine:
    """The engine that serves the checkpoint. ``calibration`` (input ids, attention mask of
    server.engines.quantization's sentences) chooses int8's weight scales and measures the re-check margin.

    int8 is re-checked in float32 under the margin (``server.engines.recheck``); with ``--dtype auto`` on
    the CPU, ONNX Runtime's re-checked int8 is a candidate beside the float engines (not for regression
    heads, nor with the re-check off: int8 alone changes more labels than a default may)."""
    device, dtype, requested = choice.device, choice.dtype, choice.engine
    if requested == "onnxruntime":
        if device.type != "cpu":
            raise ModelLoadError("--engine onnxruntime runs on the CPU; use --engine torch (or auto) on CUDA")
        if onnx_variant(dtype) is None:
            raise ModelLoadError(f"--engine onnxruntime serves float32 or int8, not {dtype}")
    onnx: list[Engine] = []
    if requested in ("onnxruntime", "auto") and device.type == "cpu" and onnx_variant(dtype):
        try:
            onnx = onnx_candidates(checkpoint, choice, calibration)
        except onnx_engine.EngineUnavailable as exc:
            log.warning("onnxruntime cannot serve this model (%s): falling back to torch", exc)
    sizes = sorted({s for s in TIMING_SIZES if s <= choice.max_batch_size} | {choice.max_batch_size})
    timing_token = min(1000, checkpoint.config.vocab_size - 1)
    if requested == "onnxruntime" and onnx:
        return fastest_by_size(onnx, sizes, TIMING_WIDTH, timing_token)
    candidates = torch_candidates(checkpoint.model, device, dtype, calibration, checkpoint.problem_type,
                                  choice.recheck_margin)
    if requested == "auto":
        candidates += onnx
    return fastest_by_size(candidates, sizes, TIMING_WIDTH, timing_token)


def onnx_candidates(checkpoint: Checkpoint, choice: EngineChoice,
                    calibration: tuple[np.ndarray, np.ndarray]) -> list[Engine]:
    """ONNX Runtime's engines for the dtype asked: float32; int8 re-checked on float32; and for auto both,
    unless the re-check is off or cannot apply (then float32 alone)."""
    cache_dir = choice.cache_dir or cache_root() / "engines"
    threads = choice.threads or torch.get_num_threads()
    load = lambda variant: onnx_engine.load(checkpoint.source, checkpoint.weights_sha256, checkpoint.config,  # noqa: E731
                                            variant, cache_dir, threads, calibration)
    dtype, problem_type, recheck_margin = choice.dtype, checkpoint.problem_type, choice.recheck_margin
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

