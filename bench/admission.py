"""How the admission bound behaves at its two edges, on one fresh gRPC server: 64 closed-loop callers
(about 0.6 s of queue per call for the built-in model on two cores, which a 1 s bound should admit) and
open-loop overload (4x what 32 callers carried, which it must refuse at once while accepted calls stay
under 2 s). The variants in docs/performance.md were compared with it, run twice each.

    python -m bench.admission --model builtin
    python -m bench.admission --model bert-base --calls 96
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bench import systems
from bench.load import REFUSED, grpc_caller, grpc_load, open_loop
from bench.texts import benchmark_texts


def probe(model_dir: Path, calls: int, overload_seconds: float, factor: float, logs: Path,
          rate: float | None = None) -> dict:
    """``rate``: offer this many calls a second under overload instead of ``factor`` times what 32 callers
    carried (variants compared at one offered rate are not confounded by the machine's speed that minute)."""
    texts = benchmark_texts("short")
    with systems.grpc_server(model_dir, logs, device="cpu") as (target, _pids, _info, _metrics):
        capacity = asyncio.run(grpc_load(target, texts, 32, calls)).throughput
        crowd = asyncio.run(grpc_load(target, texts, 64, calls))
        offered = rate or factor * capacity

        async def overload():
            async with grpc_caller(target) as call:
                return await open_loop(call, texts, offered, overload_seconds)

        flood = asyncio.run(overload())
    refused = sum(v for k, v in crowd.codes.items() if k in REFUSED)
    return {"texts_per_s_at_32": round(capacity, 1), "texts_per_s_at_64": round(crowd.throughput, 1),
            "refused_at_64": refused, "calls_at_64": crowd.sent, "answered_at_64": sum(crowd.codes.values()),
            "overload_offered_per_s": round(offered, 1), "overload_ok_per_s": round(flood.throughput, 1),
            "overload_accepted_p50_ms": round(flood.percentile(50), 1),
            "overload_accepted_p99_ms": round(flood.percentile(99), 1),
            "overload_refused_p99_ms": round(flood.percentile(99, refused=True), 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin", help="builtin, bert-base, or a model directory")
    parser.add_argument("--calls", type=int, default=480, help="calls per closed-loop point")
    parser.add_argument("--overload-seconds", type=float, default=10.0)
    parser.add_argument("--overload-factor", type=float, default=4.0)
    parser.add_argument("--overload-rate", type=float, default=None,
                        help="calls/s offered under overload (default: the factor times what 32 callers carried)")
    args = parser.parse_args(argv)
    from bench.run import RESULTS, bert_base_dir
    from server.builtin_model import builtin_model_dir

    model_dir = {"builtin": builtin_model_dir, "bert-base": bert_base_dir}.get(args.model, lambda: Path(args.model))()
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"model": args.model, **probe(model_dir, args.calls, args.overload_seconds,
                                                     args.overload_factor, logs, args.overload_rate)}))


if __name__ == "__main__":
    main()
