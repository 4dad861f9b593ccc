"""Fallback load generator (asyncio + aiohttp) for machines without wrk.

A Python client is itself CPU-bound well below what wrk sustains, and on a 2-core machine it competes
with the servers it measures, so its absolute figures are lower and noisier than wrk's; ratios between
targets remain usable. The report says which generator ran.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from .stats import percentile
from .workload import LoadResult


def run(url: str, *, body: bytes, headers: dict[str, str], connections: int, threads: int,
        duration: float) -> LoadResult:
    return asyncio.run(_run(url, body, headers, connections, duration))


async def _run(url: str, body: bytes, headers: dict[str, str], connections: int, duration: float) -> LoadResult:
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket_errors": 0}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        deadline = time.perf_counter() + duration
        started = time.perf_counter()
        await asyncio.gather(*(_client(session, url, body=body, headers=headers, deadline=deadline,
                                       latencies=latencies, counts=counts)
                               for _ in range(connections)))
        elapsed = time.perf_counter() - started
    done = len(latencies)
    return LoadResult(rps=done / elapsed, p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
                      requests=done, non_2xx=counts["non_2xx"], socket_errors=counts["socket_errors"],
                      tool="aiohttp")


async def _client(session, url, *, body, headers, deadline, latencies, counts) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    counts["non_2xx"] += 1
        except (aiohttp.ClientError, TimeoutError):
            counts["socket_errors"] += 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)
