"""A bounded soak and overload run against a real server and bridge on loopback; writes the table in
docs/reliability.md.

Traffic, all at once: valid gRPC calls (unary, batch, stream) from more callers than the queue holds,
calls with deadlines too short to meet, and every kind of bad input, over gRPC and through the bridge.
Every call must end with a documented status; "lost" counts calls that ended any other way (no status,
connection error, a hang past the harness's own limit).

    python -m bench.soak                  # built-in model, about 2 minutes
    python -m bench.soak --model DIR --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
import grpc

from bench import systems
from bench.texts import benchmark_texts
from clients.channel import ChannelConfig
from sentiment.v1 import sentiment_pb2 as pb
from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

DOC = Path(__file__).parent.parent / "docs" / "reliability.md"
GRPC_EXPECTED = {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
HTTP_EXPECTED = {200, 400, 413, 415, 422, 429, 504}

BAD_GRPC = {
    "empty text": lambda: pb.PredictRequest(text=""),
    "whitespace text": lambda: pb.PredictRequest(text=" \n\t "),
    "text over max_text_chars": lambda: pb.PredictRequest(text="x" * 25000),
    "over-long text with TRUNCATION_REJECT": lambda: pb.PredictRequest(
        text="good " * 800, options=pb.PredictOptions(truncation=pb.TRUNCATION_REJECT)),
    "batch over max_batch_texts": lambda: pb.PredictBatchRequest(texts=["ok"] * 65),
    "empty batch": lambda: pb.PredictBatchRequest(texts=[]),
}
BAD_HTTP = {
    "malformed JSON": dict(data=b"{not json", headers={"Content-Type": "application/json"}),
    "form body (wrong content type)": dict(data=b"text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    "text is a number": dict(json={"text": 5}),
    "texts is a string": dict(json={"texts": "abc"}),
    "both text and texts": dict(json={"text": "a", "texts": ["b"]}),
    "JSON array body": dict(json=["a"]),
    "unknown truncation": dict(json={"text": "a", "truncation": "maybe"}),
    "empty text": dict(json={"text": ""}),
    "2 MiB body": dict(json={"text": "x" * (2 * 1024 * 1024)}),
    "invalid UTF-8": dict(data=b'{"text": "\xff\xfe"}', headers={"Content-Type": "application/json"}),
}


async def grpc_traffic(target: str, texts: list[str], requests: int, callers: int, tally: Counter, lost: list) -> None:
    channel = ChannelConfig(target=target, max_message_bytes=8 * 1024 * 1024).open(aio=True)
    stub = pb_grpc.SentimentServiceStub(channel)
    counter = iter(range(requests))

    async def one(i: int) -> None:
        kind = i % 10
        try:
            if kind < 6:
                await stub.Predict(pb.PredictRequest(text=texts[i % len(texts)]), timeout=30)
            elif kind < 8:
                await stub.PredictBatch(pb.PredictBatchRequest(texts=texts[i % 50 : i % 50 + 8]), timeout=30)
            elif kind == 8:
                await stub.Predict(pb.PredictRequest(text=texts[i % len(texts)]), timeout=0.005)
            else:
                name = list(BAD_GRPC)[(i // 10) % len(BAD_GRPC)]
                message = BAD_GRPC[name]()
                method = stub.PredictBatch if isinstance(message, pb.PredictBatchRequest) else stub.Predict
                await method(message, timeout=30)
            tally[("grpc", "OK")] += 1
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            tally[("grpc", code)] += 1
            if code not in GRPC_EXPECTED:
                lost.append(("grpc", code, error.details()))

    async def caller():
        for i in counter:
            await one(i)

    async def stream_caller():
        ids = [f"s{i}" for i in range(200)]

        async def requests_iter():
            for i, item in enumerate(ids):
                yield pb.StreamPredictRequest(id=item, text=texts[i % len(texts)] if i % 20 else "")

        seen = set()
        try:
            async for answer in stub.PredictStream(requests_iter(), timeout=120):
                seen.add(answer.id)
                code = "OK" if answer.HasField("prediction") else grpc.StatusCode(
                    next(c for c in grpc.StatusCode if c.value[0] == answer.error.code)).name
                tally[("grpc stream item", code)] += 1
        except grpc.aio.AioRpcError as error:
            lost.append(("grpc stream", error.code().name, error.details()))
        lost.extend(("grpc stream item", "NO ANSWER", i) for i in set(ids) - seen)

    await asyncio.gather(*(caller() for _ in range(callers)), stream_caller())
    await channel.close()


async def http_traffic(url: str, texts: list[str], requests: int, callers: int, tally: Counter, lost: list) -> None:
    counter = iter(range(requests))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one(i: int) -> None:
            if i % 5 == 4:
                name = list(BAD_HTTP)[(i // 5) % len(BAD_HTTP)]
                kwargs = BAD_HTTP[name]
            else:
                kwargs = dict(json={"text": texts[i % len(texts)]})
            try:
                async with session.post(url, **kwargs) as response:
                    body = await response.read()
                    is_json = response.headers.get("Content-Type", "").startswith("application/json")
                    tally[("http", response.status)] += 1
                    if response.status not in HTTP_EXPECTED or not is_json or not json.loads(body):
                        lost.append(("http", response.status, body[:200]))
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                tally[("http", type(error).__name__)] += 1
                lost.append(("http", type(error).__name__, str(error)))

        async def caller():
            for i in counter:
                await one(i)

        await asyncio.gather(*(caller() for _ in range(callers)))


def write_doc(model: str, tally: Counter, lost: list, seconds: float, args) -> str:
    sent = sum(tally.values())
    ok = sum(v for (_, code), v in tally.items() if code in ("OK", 200))
    rows = "\n".join(f"| {transport} | {code} | {count} |" for (transport, code), count in sorted(tally.items(), key=str))
    table = f"""## Soak and overload run

Command: `{' '.join(['python -m bench.soak', *args])}` on the {model} model, {seconds:.0f}s, one machine (2 CPU
cores), server with `--max-batch-size 4` (a queue of 64 texts), everything on loopback.

| requests sent | succeeded | refused or rejected with a documented status | lost |
|---|---|---|---|
| {sent} | {ok} | {sent - ok - len(lost)} | **{len(lost)}** |

By transport and status:

| transport | status | count |
|---|---|---|
{rows}

Bad input tried (each answered with the status in parentheses; none took the process down):

- gRPC (INVALID_ARGUMENT): {', '.join(BAD_GRPC)}; stream items with empty text (an error item, the stream goes on).
- HTTP: malformed JSON (400), form body (415), wrong field types / shapes / unknown options (422), empty text
  (400), 2 MiB body (413), invalid UTF-8 (400).
- Deadlines of 5 ms under load (DEADLINE_EXCEEDED; the text is dropped from the queue, never run).
"""
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the built-in model)")
    parser.add_argument("--requests", type=int, default=3000, help="gRPC calls (the bridge gets half as many)")
    parser.add_argument("--callers", type=int, default=256, help="concurrent gRPC callers (4x the queue)")
    args = parser.parse_args(argv)
    from server.builtin_model import builtin_model_dir

    model_dir = Path(args.model) if args.model else builtin_model_dir()
    texts = benchmark_texts("short", 512)
    logs = Path(__file__).parent / "results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    tally: Counter = Counter()
    lost: list = []
    started = time.perf_counter()
    with systems.grpc_server(model_dir, logs, max_batch_size=4) as (target, pids, _, _metrics), \
            systems.bridge(target, logs, workers=2) as (url, _):
        async def run():
            await asyncio.gather(grpc_traffic(target, texts, args.requests, args.callers, tally, lost),
                                 http_traffic(url, texts, args.requests // 2, 64, tally, lost))
        asyncio.run(run())
    seconds = time.perf_counter() - started
    section = write_doc(model_dir.name, tally, lost, seconds, argv if argv is not None else __import__("sys").argv[1:])
    text = DOC.read_text() if DOC.exists() else ""
    marker = "## Soak and overload run"
    DOC.write_text((text.split(marker)[0] if marker in text else text) + section)
    print(section)
    if lost:
        print("LOST:", lost[:20])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
