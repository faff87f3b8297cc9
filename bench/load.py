"""A closed-loop load generator: C concurrent callers send a fixed number of requests in total.

It runs on asyncio in its own process, so one core can drive 128 callers; gRPC calls go through
``grpc.aio``, HTTP calls through aiohttp with keep-alive connections.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


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

    def percentile(self, q: float, refused: bool = False) -> float:
        values = self.latencies_refused if refused else self.latencies_ok
        return float(np.percentile(values, q)) * 1000 if values else float("nan")


async def _drive(call, texts: list[str], concurrency: int, count: int, refusal_backoff: float) -> LoadResult:
    counter = itertools.count()
    result = LoadResult(concurrency=concurrency, sent=count, seconds=0.0)

    async def caller():
        while (i := next(counter)) < count:
            started = time.perf_counter()
            code = await call(texts[i % len(texts)])
            elapsed = time.perf_counter() - started
            result.codes[code] += 1
            if code == "OK":
                result.latencies_ok.append(elapsed)
            elif code in ("RESOURCE_EXHAUSTED", "429"):
                result.latencies_refused.append(elapsed)
                await asyncio.sleep(refusal_backoff)  # a polite client backs off before trying again

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def grpc_load(target: str, texts: list[str], concurrency: int, count: int, refusal_backoff: float = 0.05,
                    timeout: float = 60.0) -> LoadResult:
    import grpc

    from clients.channel import ChannelConfig
    from sentiment.v1 import sentiment_pb2 as pb
    from sentiment.v1 import sentiment_pb2_grpc as pb_grpc

    channel = ChannelConfig(target=target, retries=False).open(aio=True)
    stub = pb_grpc.SentimentServiceStub(channel)

    async def call(text: str) -> str:
        try:
            await stub.Predict(pb.PredictRequest(text=text), timeout=timeout)
            return "OK"
        except grpc.aio.AioRpcError as error:
            return error.code().name

    try:
        return await _drive(call, texts, concurrency, count, refusal_backoff)
    finally:
        await channel.close()


async def http_load(url: str, texts: list[str], concurrency: int, count: int, refusal_backoff: float = 0.05,
                    timeout: float = 60.0) -> LoadResult:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async def call(text: str) -> str:
            try:
                async with session.post(url, json={"text": text}) as response:
                    await response.read()
                    return "OK" if response.status == 200 else str(response.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                return type(error).__name__

        return await _drive(call, texts, concurrency, count, refusal_backoff)
