"""``make bench``: the raw model limit, the seed's design, our gRPC server and our REST bridge, under
the same load generator, on one machine, in one run. Writes ``bench/results/<model>-<device>.md``,
``.json`` and ``.png``.

    python -m bench.run                       # bert-base-sized (random weights) and the built-in model
    python -m bench.run --models builtin --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import systems
from clients import SentimentClient
from bench.load import REFUSED, LoadResult, grpc_caller, grpc_load, http_caller, http_load, open_loop
from bench.texts import benchmark_texts

RESULTS = Path(__file__).parent / "results"
MODELS_DIR = Path(__file__).parent / ".models"


def bert_base_dir() -> Path:
    """A bert-base-sized classifier (BertConfig() defaults, 110M parameters) with random weights and the
    uncased BERT vocabulary: speed does not depend on the weights."""
    target = MODELS_DIR / "bert-base-random"
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from server.builtin_model import builtin_model_dir

    torch.manual_seed(0)
    labels = ["negative", "neutral", "positive"]
    config = BertConfig(num_labels=3, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    BertForSequenceClassification(config).eval().save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(builtin_model_dir()).save_pretrained(target)
    return target


def vocab_file(model_dir: Path) -> Path:
    """vocab.txt for the seed's slow tokenizer, written from the fast tokenizer's vocabulary."""
    from transformers import AutoTokenizer

    path = MODELS_DIR / f"{model_dir.name}-vocab.txt"
    if not path.is_file():
        vocab = AutoTokenizer.from_pretrained(model_dir).get_vocab()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    return path


def run_raw(model_dir: Path, kind: str, device: str, engine: str = "auto") -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.raw", "--model", str(model_dir), "--kind", kind, "--device", device,
                          "--engine", engine], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Probe:
    """Counters read before and after a load point: the server's CPU time split by thread (forward
    pass / request path), its batches, and the bridge processes' CPU time."""

    def __init__(self, server_pid: int, metrics_url: str, bridge_pids: list[int] | None = None):
        self.server_pid, self.metrics_url, self.bridge_pids = server_pid, metrics_url, bridge_pids or []

    def read(self) -> dict:
        forward, request_path = systems.cpu_seconds(self.server_pid)
        return {"forward": forward, "request_path": request_path,
                "batches": systems.metric(self.metrics_url, "sentiment_batch_size_count"),
                "texts": systems.metric(self.metrics_url, "sentiment_batch_size_sum"),
                "bridge": systems.process_cpu_seconds(self.bridge_pids)}

    @staticmethod
    def per_call(before: dict, after: dict, calls: int) -> dict:
        d = {k: after[k] - before[k] for k in before}
        out = {"server_cpu_ms_per_call": round((d["forward"] + d["request_path"]) * 1000 / calls, 3),
               "request_path_cpu_ms_per_call": round(d["request_path"] * 1000 / calls, 3),
               "forward_cpu_ms_per_call": round(d["forward"] * 1000 / calls, 3),
               "avg_batch_size": round(d["texts"] / d["batches"], 1) if d["batches"] else None}
        if before["bridge"] or after["bridge"]:
            out["bridge_cpu_ms_per_call"] = round(d["bridge"] * 1000 / calls, 3)
        return out


def row(system: str, kind: str, result: LoadResult, rss: float, counters: dict | None = None) -> dict:
    return {"system": system, "texts": kind, "concurrency": result.concurrency, "requests": result.sent,
            "ok": result.ok, "texts_per_s": round(result.throughput, 1),
            "p50_ms": round(result.percentile(50), 1), "p95_ms": round(result.percentile(95), 1),
            "p99_ms": round(result.percentile(99), 1), "peak_rss_mb": round(rss),
            "errors": {k: v for k, v in result.codes.items() if k != "OK"}, **(counters or {})}


def count_for(concurrency: int, quick: bool, device: str = "cpu", min_calls: int = 0) -> int:
    """Calls per load point: enough rounds of every caller for a stable rate, and enough calls that the
    CPU time per call (read in 10 ms clock ticks) is good to a few hundredths of a millisecond.
    ``min_calls``: at least this many (a full run gives our servers' points about 3 s of load at the raw
    limit's rate: 256 calls at 32 callers were under a second, and one hiccup on a shared machine moved
    a ratio by a tenth)."""
    scale = 8 if device == "cuda" else 1  # a GPU answers ~10x faster: more requests per point for stable numbers
    if quick:
        return scale * max(48, 3 * concurrency)
    return max(scale * max(240, 8 * concurrency), min_calls)


SECONDS_PER_POINT = 3.0  # of load at the raw limit's rate, per load point of our servers (full runs)
FLOOR_CALLS = 3000  # the transport floor answers ~3,000 calls a second: about a second of load


def server_settings(device: str) -> dict:
    """Batch limits per device: the CPU defaults, or bigger batches where a GPU has the room."""
    return {"max_batch_size": 128, "max_batch_tokens": 32768} if device == "cuda" else {}


def loaded(point) -> tuple[LoadResult, float]:
    """Run a load point (``point()`` makes its coroutine); also the milliseconds of this process's CPU per
    call: the load generator's, its threads included, on the cores it shares with the servers."""
    started = time.process_time()
    result = asyncio.run(point())
    return result, round((time.process_time() - started) * 1000 / result.sent, 3)


def sweep(name, kinds, texts, concurrencies, quick, load, target, pids, device="cpu", probe: Probe | None = None,
          min_calls: dict[str, int] | None = None) -> list[dict]:
    """Closed-loop load points; ``min_calls``: the fewest calls per point, by kind of text."""
    rows = []
    for kind in kinds:
        asyncio.run(load(target, texts[kind], 4, 16))  # warm the connection and the server
        for c in concurrencies:
            before = probe.read() if probe else None
            calls = count_for(c, quick, device, (min_calls or {}).get(kind, 0))
            result, load_cpu = loaded(lambda: load(target, texts[kind], c, calls))
            counters = Probe.per_call(before, probe.read(), result.sent) if probe else {}
            counters["load_generator_cpu_ms_per_call"] = load_cpu
            rows.append(row(name, kind, result, systems.peak_rss_mb(pids), counters))
            cpu = f"  server CPU {counters['server_cpu_ms_per_call']:.2f} ms/call ({counters['request_path_cpu_ms_per_call']:.2f} " \
                  f"outside the forward pass), batch {counters['avg_batch_size']}" if probe else ""
            cpu += f", load generator {counters['load_generator_cpu_ms_per_call']:.2f} ms/call"
            print(f"  {name:<16} {kind:<6} C={c:<4} {rows[-1]['texts_per_s']:>7} texts/s  p99 {rows[-1]['p99_ms']} ms{cpu}",
                  flush=True)
    return rows


OVERLOAD_FACTOR = 4


def overload(model_dir: Path, texts: list[str], device: str, logs: Path, seconds: float, capacity: dict[str, float],
             factor: float = OVERLOAD_FACTOR) -> list[dict]:
    """Overload, open loop: requests start at ``factor`` (4) times the rate each system carried with 32
    callers, for a fixed time, against a fresh server with the default admission bounds (queue size and
    queue seconds)."""
    rows = []
    with systems.grpc_server(model_dir, logs, device=device, **server_settings(device)) as (target, pids, info, _):
        rate = factor * capacity["grpc"]
        result = asyncio.run(_open_loop_grpc(target, texts, rate, seconds))
        rows.append(overload_row("grpc", info, rate, result, systems.peak_rss_mb(pids)))
        with systems.bridge(target, logs) as (url, bridge_pids):
            rate = factor * capacity["bridge"]
            result = asyncio.run(_open_loop_http(url, texts, rate, seconds))
            rows.append(overload_row("bridge", info, rate, result, systems.peak_rss_mb(pids + bridge_pids)))
    return rows


async def _open_loop_grpc(target, texts, rate, seconds):
    async with grpc_caller(target) as call:
        return await open_loop(call, texts, rate, seconds)


async def _open_loop_http(url, texts, rate, seconds):
    async with http_caller(url, connections=512) as call:
        return await open_loop(call, texts, rate, seconds)


def overload_row(system: str, info, rate: float, result: LoadResult, rss: float) -> dict:
    refused = sum(v for k, v in result.codes.items() if k in REFUSED)
    # The load generator never cancels a call (its timeout is 60 s): a CANCELLED call was held by gRPC
    # core on the server past --max-queue-seconds, before the server could take it (docs/reliability.md).
    shed_code = "CANCELLED" if system == "grpc" else None
    return {"system": system, "max_queue_size": info.max_queue_size, "max_queue_seconds": info.max_queue_seconds,
            "offered_per_s": round(rate, 1), "seconds": round(result.seconds, 1), "sent": result.sent,
            "ok": result.ok, "ok_per_s": round(result.throughput, 1), "refused": refused,
            "shed": result.codes.get(shed_code, 0),
            "other": {k: v for k, v in result.codes.items() if k not in ("OK", shed_code, *REFUSED)},
            "peak_outstanding": result.concurrency,
            "accepted_p50_ms": round(result.percentile(50), 1), "accepted_p99_ms": round(result.percentile(99), 1),
            "refused_p99_ms": round(result.percentile(99, refused=True), 1), "peak_rss_mb": round(rss)}


ENGINES = ("torch", "onnxruntime")


def bench_model(label: str, model_dir: Path, device: str, kinds: list[str], concurrencies: list[int], quick: bool,
                include_seed: bool, out_dir: Path = RESULTS, overload_seconds: float = 15.0,
                overload_factor: float = OVERLOAD_FACTOR) -> dict:
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    texts = {kind: benchmark_texts(kind, 512) for kind in kinds}
    engines = ENGINES if device == "cpu" else ("torch",)
    report = {"model": label, "model_dir": str(model_dir), "device": device, "rows": [], "raw": {}, "raw_engines": {},
              "cores": len(os.sched_getaffinity(0))}
    for kind in kinds:
        report["raw"][kind] = run_raw(model_dir, kind, device)  # the engine(s) auto serves with
        report["raw_engines"][kind] = {engine: run_raw(model_dir, kind, device, engine) for engine in engines}
        for engine, raw in [("auto", report["raw"][kind]), *report["raw_engines"][kind].items()]:
            print(f"  raw limit {engine:<12} {kind:<6} {raw['texts_per_s']:.1f} texts/s ({raw['engine']} {raw['dtype']}, "
                  f"batch {raw['best_batch_size']}, one text {raw['single_forward_p50_ms']:.1f} ms)", flush=True)
    if include_seed:
        with systems.seed_service(model_dir, vocab_file(model_dir), logs) as (url, pids):
            report["rows"] += sweep("seed", kinds, texts, concurrencies, quick, http_load, url, pids)
    with systems.grpc_server(model_dir, logs, device=device, **server_settings(device)) as (target, pids, info, metrics):
        report["server"] = {"device": info.device, "dtype": info.dtype, "engine": info.engine,
                            "max_batch_size": info.max_batch_size}
        probe = Probe(pids[0], metrics)
        min_calls = {kind: round(SECONDS_PER_POINT * report["raw"][kind]["texts_per_s"]) for kind in kinds}
        report["rows"] += sweep("grpc", kinds, texts, concurrencies, quick, grpc_load, target, pids, device, probe,
                                min_calls)
        with systems.bridge(target, logs) as (url, bridge_pids):
            report["rows"] += sweep("bridge", kinds, texts, concurrencies, quick, http_load, url, pids + bridge_pids, device,
                                    Probe(pids[0], metrics, bridge_pids), min_calls)
        with SentimentClient(target) as client:
            report["server"]["batch_costs"] = [asdict(c) for c in client.model_info().batch_costs]
    with systems.transport_floor(logs) as (target, pids):
        kind = kinds[0]
        asyncio.run(grpc_load(target, texts[kind], 4, 16))
        before = systems.process_cpu_seconds(pids)
        result, load_cpu = loaded(lambda: grpc_load(target, texts[kind], 32, count_for(32, quick, device, FLOOR_CALLS)))
        report["rows"].append(row("transport floor", kind, result, systems.peak_rss_mb(pids), {
            "server_cpu_ms_per_call": round((systems.process_cpu_seconds(pids) - before) * 1000 / result.sent, 3),
            "load_generator_cpu_ms_per_call": load_cpu}))
        print(f"  transport floor (bare grpc.aio, constant answer) C=32 {result.throughput:.1f} /s, "
              f"{report['rows'][-1]['server_cpu_ms_per_call']:.2f} ms CPU/call", flush=True)
    for engine in engines:  # each engine on its own, where auto did not already serve with it alone
        if engine == info.engine:
            continue
        with systems.grpc_server(model_dir, logs, device=device, engine=engine, **server_settings(device)) as (
                target, pids, engine_info, metrics):
            report["rows"] += sweep(f"grpc {engine}", kinds[:1], texts, [1, 32], quick, grpc_load, target, pids, device,
                                    Probe(pids[0], metrics))
    capacity = {system: (pick(report, system, kinds[0], 32) or pick(report, system, kinds[0], max(concurrencies)))["texts_per_s"]
                for system in ("grpc", "bridge")}
    report["overload"] = overload(model_dir, texts[kinds[0]], device, logs, overload_seconds, capacity, overload_factor)
    report["overload_factor"] = overload_factor
    report["ratios"] = ratios(report)
    return report


def _has_cpu(*rows: dict) -> bool:
    """CPU columns to compute a ceiling from: measured, and over calls that were all answered (a refused
    call costs a fraction of an answered one, so a point with refusals would skew the per-call figures)."""
    return all(r.get("server_cpu_ms_per_call") is not None and r.get("load_generator_cpu_ms_per_call") is not None
               and not r.get("errors") for r in rows)


def pick(report, system, kind, c):
    return next((r for r in report["rows"] if (r["system"], r["texts"], r["concurrency"]) == (system, kind, c)), None)


def ratios(report: dict) -> dict:
    out = {}
    for kind in report["raw"]:
        grpc32, bridge32, seed32 = (pick(report, s, kind, 32) for s in ("grpc", "bridge", "seed"))
        grpc1, grpc64 = pick(report, "grpc", kind, 1), pick(report, "grpc", kind, 64)
        raw = report["raw"][kind]
        torch_raw = report.get("raw_engines", {}).get(kind, {}).get("torch")
        if grpc32:
            out[f"{kind}: grpc / raw limit of the engine served ({raw.get('engine', 'torch')} {raw.get('dtype', '')}) at C=32"] = round(
                grpc32["texts_per_s"] / raw["texts_per_s"], 2)
        if grpc32 and grpc64:
            out[f"{kind}: grpc at C=64 / C=32"] = round(grpc64["texts_per_s"] / grpc32["texts_per_s"], 2)
        if grpc32 and seed32:
            out[f"{kind}: grpc / seed at C=32"] = round(grpc32["texts_per_s"] / seed32["texts_per_s"], 2)
        if grpc32 and bridge32:
            out[f"{kind}: bridge / grpc at C=32"] = round(bridge32["texts_per_s"] / grpc32["texts_per_s"], 2)
            if _has_cpu(grpc32, bridge32):
                # with every core busy, texts/s goes as 1 / (CPU per call of everything on the machine)
                out[f"{kind}: bridge / grpc at C=32 if the bridge took no CPU (ceiling from CPU per call)"] = round(
                    (grpc32["server_cpu_ms_per_call"] + grpc32["load_generator_cpu_ms_per_call"])
                    / (bridge32["server_cpu_ms_per_call"] + bridge32["load_generator_cpu_ms_per_call"]), 2)
        if grpc32 and _has_cpu(grpc32) and report.get("cores"):
            raw_cpu_ms = report["cores"] * 1000 / raw["texts_per_s"]  # the raw limit keeps every core busy
            out[f"{kind}: grpc / raw at C=32 if the forward pass cost what it does offline (ceiling from CPU per call)"] = round(
                raw_cpu_ms / (raw_cpu_ms + grpc32["request_path_cpu_ms_per_call"] + grpc32["load_generator_cpu_ms_per_call"]), 2)
        if grpc1:
            out[f"{kind}: grpc p50 at C=1 / one bare forward pass ({raw.get('engine', 'torch')} {raw.get('dtype', '')})"] = round(
                grpc1["p50_ms"] / raw["single_forward_p50_ms"], 2)
            if torch_raw:
                out[f"{kind}: grpc p50 at C=1 / one bare torch forward pass ({torch_raw['dtype']})"] = round(
                    grpc1["p50_ms"] / torch_raw["single_forward_p50_ms"], 2)
        if grpc32 and "request_path_cpu_ms_per_call" in grpc32:
            out[f"{kind}: server CPU per call outside the forward pass at C=32 (ms)"] = grpc32["request_path_cpu_ms_per_call"]
            floor = pick(report, "transport floor", kind, 32)
            if floor:
                out[f"{kind}: of which above the transport floor (ms)"] = round(
                    grpc32["request_path_cpu_ms_per_call"] - floor["server_cpu_ms_per_call"], 3)
    return out


def machine() -> str:
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}"


def _cpu_cells(r: dict) -> str:
    def fmt(key):
        return f"{r[key]:.2f}" if r.get(key) is not None else ""
    return " | ".join(fmt(k) for k in ("server_cpu_ms_per_call", "request_path_cpu_ms_per_call", "bridge_cpu_ms_per_call",
                                      "load_generator_cpu_ms_per_call")) + \
        f" | {r.get('avg_batch_size') or ''}"


def markdown(report: dict) -> str:
    server = report["server"]
    lines = [f"# Benchmark: {report['model']} on {report['device']}", "",
             f"Machine: {report['machine']}. Server: engine {server.get('engine', 'torch')}, dtype {server['dtype']}, "
             f"device {server['device']}, max batch {server['max_batch_size']}. Command: `{report['command']}`. "
             f"Took {report['seconds']:.0f}s.", "",
             "CPU columns: milliseconds of CPU time per call, from /proc (utime + stime) before and after each point; "
             "the server's split by thread into the forward pass (threads named `model`) and the request path "
             "(the event loop and gRPC core's threads); the load generator's is this benchmark process's own, all its "
             "threads (it shares the cores with the servers).", "",
             "| system | texts | callers | texts/s | p50 ms | p95 ms | p99 ms | peak RSS MiB | errors | server CPU ms/call | "
             "outside the forward pass | bridge CPU ms/call | load generator CPU ms/call | avg batch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, raw in report["raw"].items():
        variants = [("auto", raw), *report.get("raw_engines", {}).get(kind, {}).items()]
        for engine, r in variants:
            lines.append(f"| raw model limit ({engine}: {r.get('engine', 'torch')} {r['dtype']}, batch {r['best_batch_size']}) | "
                         f"{kind} | - | {r['texts_per_s']:.1f} | one text: {r['single_forward_p50_ms']:.1f} | | | "
                         f"{r['peak_rss_mb']:.0f} | | | | | | |")
    for r in report["rows"]:
        lines.append(f"| {r['system']} | {r['texts']} | {r['concurrency']} | {r['texts_per_s']} | {r['p50_ms']} | "
                     f"{r['p95_ms']} | {r['p99_ms']} | {r['peak_rss_mb']} | {r['errors'] or ''} | {_cpu_cells(r)} |")
    if server.get("batch_costs"):
        lines += ["", "Batch cost the server learned (seconds = fixed + per token x padded tokens + per token-width x "
                  "padded tokens x width):", ""]
        lines += [f"- {c['engine']}: {c['fixed_seconds'] * 1000:.2f} ms + {c['seconds_per_token'] * 1e6:.2f} us/token + "
                  f"{c['seconds_per_token_width'] * 1e9:.2f} ns/token/width ({c['batches']} batches)" for c in server["batch_costs"]]
    lines += ["", "Ratios:", ""] + [f"- {k}: **{v}**" for k, v in report["ratios"].items()]
    factor = report.get("overload_factor", OVERLOAD_FACTOR)
    lines += ["", f"Overload ({factor:g}x, open loop: requests start at {factor:g}x the rate the system carried "
              "with 32 callers, whatever the answers; fresh server with the default admission bounds):", "",
              "| system | queue bound | offered /s | sent | ok | ok /s | refused | shed by gRPC core | other | peak outstanding | accepted p50 ms | accepted p99 ms | refused p99 ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for o in report["overload"]:
        lines.append(f"| {o['system']} | {o['max_queue_size']} texts, {o['max_queue_seconds']:g} s | {o['offered_per_s']} | "
                     f"{o['sent']} | {o['ok']} | {o['ok_per_s']} | {o['refused']} | {o['shed']} | {o['other'] or ''} | {o['peak_outstanding']} | "
                     f"{o['accepted_p50_ms']} | {o['accepted_p99_ms']} | {o['refused_p99_ms']} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["raw"])
    fig, axes = plt.subplots(2, len(kinds), figsize=(6 * len(kinds), 8), squeeze=False)
    for col, kind in enumerate(kinds):
        for system in ("seed", "grpc", "bridge"):
            rows = [r for r in report["rows"] if r["system"] == system and r["texts"] == kind]
            if rows:
                cs = [r["concurrency"] for r in rows]
                axes[0][col].plot(cs, [r["texts_per_s"] for r in rows], marker="o", label=system)
                axes[1][col].plot(cs, [r["p99_ms"] for r in rows], marker="o", label=system)
        axes[0][col].axhline(report["raw"][kind]["texts_per_s"], linestyle="--", color="grey", label="raw model limit")
        axes[0][col].set_title(f"{report['model']}: {kind} texts, throughput")
        axes[1][col].set_title(f"{report['model']}: {kind} texts, p99 latency")
        axes[0][col].set_ylabel("texts/s")
        axes[1][col].set_ylabel("p99 ms")
        axes[1][col].set_yscale("log")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent callers")
            ax.legend()
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["bert-base", "builtin"], help="bert-base, builtin, or model directories")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 16, 32, 64, 128])
    parser.add_argument("--kinds", nargs="+", default=["short", "medium"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or auto")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed reference")
    parser.add_argument("--quick", action="store_true", help="fewer requests per point")
    parser.add_argument("--overload-seconds", type=float, default=None, help="length of the overload run (default 15, quick 5)")
    parser.add_argument("--overload-factor", type=float, default=OVERLOAD_FACTOR,
                        help="offered load of the overload run, as a multiple of the rate carried with 32 callers")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: skipping the GPU benchmark")
        return
    from server.builtin_model import builtin_model_dir

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        model_dir = bert_base_dir() if name == "bert-base" else builtin_model_dir() if name == "builtin" else Path(name)
        label = name if name in ("bert-base", "builtin") else Path(name).name
        print(f"== {label} ({model_dir}) on {args.device}", flush=True)
        started = time.perf_counter()
        overload_seconds = args.overload_seconds or (5.0 if args.quick else 15.0)
        report = bench_model(label, model_dir, args.device, args.kinds, args.concurrency, args.quick, not args.no_seed,
                             args.out, overload_seconds, args.overload_factor)
        report.update(seconds=time.perf_counter() - started, machine=machine(), command="python -m bench.run " + " ".join(argv or sys.argv[1:]))
        stem = args.out / f"{label}-{args.device}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
        stem.with_suffix(".md").write_text(markdown(report))
        plot(report, stem.with_suffix(".png"))
        print(markdown(report))


if __name__ == "__main__":
    main()
