"""Load generators: closed-loop (C concurrent callers send a fixed number of requests in total) and
open-loop (requests start at a fixed rate whatever the answers, for overload).

It runs on asyncio in its own process, so one core can drive 128 callers; gRPC calls go through
``grpc.aio``, HTTP calls through aiohttp with keep-alive connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


REFUSED = ("RESOURCE_EXHAUSTED", "429")


@dataclass
class LoadResult:
    concurrency: int
    sent: int
    seconds: float
    latencies_ok: list[float] = field(default_factory=list)
    latencies_refused: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.codes.get("OK", 0)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    async def timed(self, call, text: str) -> str:
        """Make one call, record its status and latency, and return the status."""
        started = time.perf_counter()
        code = await call(text)
        elapsed = time.perf_counter() - started
        self.codes[code] += 1
        if code == "OK":
            self.latencies_ok.append(elapsed)
        elif code in REFUSED:
            self.latencies_refused.append(elapsed)
        return code

    def percentile(self, q: float, refused: bool = False) -> float:
        values = self.latencies_refused if refused else self.latencies_ok
        return float(np.percentile(values, q)) * 1000 if values else float("nan")


async def _drive(call, texts: list[str], concurrency: int, count: int, refusal_backoff: float) -> LoadResult:
    counter = itertools.count()
    result = LoadResult(concurrency=concurrency, sent=count, seconds=0.0)

    async def caller():
        while (i := next(counter)) < count:
            if await result.timed(call, texts[i % len(texts)]) in REFUSED:
                await asyncio.sleep(refusal_backoff)  # a polite client backs off before trying again

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


@contextlib.asynccontextmanager
async def grpc_caller(target: str, timeout: float = 60.0):
    """``call(text) -> status name`` over one grpc.aio channel (no client-side retries)."""
    import grpc

    from clients.channel import ChannelConfig
    from sentiment.v1 import sentiment_pb2 as pb
    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

    channel = ChannelConfig(target=target).open(aio=True)
    stub = pb_grpc.SentimentServiceStub(channel)

    async def call(text: str) -> str:
        try:
            await stub.Predict(pb.PredictRequest(text=text), timeout=timeout)
            return "OK"
        except grpc.aio.AioRpcError as error:
            return error.code().name

    try:
        yield call
    finally:
        await channel.close()


@contextlib.asynccontextmanager
async def http_caller(url: str, connections: int, timeout: float = 60.0):
    """``call(text) -> "OK" or the HTTP status`` over keep-alive connections to the bridge."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async def call(text: str) -> str:
            try:
                async with session.post(url, json={"text": text}) as response:
                    await response.read()
                    return "OK" if response.status == 200 else str(response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                return type(error).__name__

        yield call


async def grpc_load(target: str, texts: list[str], concurrency: int, count: int, refusal_backoff: float = 0.05) -> LoadResult:
    async with grpc_caller(target) as call:
        return await _drive(call, texts, concurrency, count, refusal_backoff)


async def http_load(url: str, texts: list[str], concurrency: int, count: int, refusal_backoff: float = 0.05) -> LoadResult:
    async with http_caller(url, concurrency) as call:
        return await _drive(call, texts, concurrency, count, refusal_backoff)


async def open_loop(call, texts: list[str], rate: float, seconds: float) -> LoadResult:
    """Open-loop load: requests start at ``rate`` per second for ``seconds`` whatever the answers, as
    independent clients do; overload is offered load above what the service can carry."""
    count = max(1, round(rate * seconds))
    result = LoadResult(concurrency=0, sent=count, seconds=0.0)
    in_flight = 0

    async def one(text: str) -> None:
        nonlocal in_flight
        await result.timed(call, text)
        in_flight -= 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
        in_flight += 1
        result.concurrency = max(result.concurrency, in_flight)  # most requests outstanding at once
        tasks.append(asyncio.create_task(one(texts[i % len(texts)])))
    await asyncio.gather(*tasks)
    result.seconds = loop.time() - started
    return result
