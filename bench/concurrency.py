"""`python -m bench.concurrency [--streams 5000]`: many concurrent streams through the gateway, loopback only.

A fake upstream holds every stream open (its first chunk at once, the rest after `--hold` seconds), so all the
streams are in flight together. The gateway runs as users run it (`manage.py serve`, two workers, default
settings). Printed: errors (by kind), time to first byte (p50/p99), and the gateway workers' RSS growth per
concurrent stream. Bounded in time: the load stops after `--limit` seconds whatever happens.

What it guards: no cap below MAX_CONCURRENT_REQUESTS (the upstream pool used to hold 100 connections per
worker, and the requests waiting for one were answered 504 "upstream timeout" at the deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson

from . import database
from .procs import Proc, ProcessSet, free_port, rss_mib, wait_http, wait_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
HOLD_HEADER = "x-bench-hold"


# ---- the fake upstream: raw ASGI, holds each stream open ---------------------------------------------------
def _sse(obj) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _chunk(delta: dict, finish=None) -> dict:
    return {"id": "chatcmpl-hold", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


FIRST = _sse(_chunk({"role": "assistant", "content": "held"}))
REST = (_sse(_chunk({"content": " open"})) + _sse(_chunk({}, "stop"))
        + _sse({"id": "chatcmpl-hold", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o",
                "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        + b"data: [DONE]\n\n")


async def upstream_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    hold = float(os.environ.get("BENCH_HOLD_SECONDS", "8"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    await send({"type": "http.response.body", "body": FIRST, "more_body": True})
    await asyncio.sleep(hold)
    await send({"type": "http.response.body", "body": REST})


# ---- the load -------------------------------------------------------------------------------------------
async def one_stream(session, url: str, key: str, model: str, *, results: list) -> None:
    began = time.perf_counter()
    ttfb = None
    try:
        async with session.post(url, headers={"Authorization": f"Bearer {key}"},
                                json={"model": model, "stream": True,
                                      "messages": [{"role": "user", "content": "hold"}]}) as response:
            if response.status != 200:
                text = await response.text()
                code = (orjson.loads(text).get("error") or {}).get("code") if text.startswith("{") else None
                results.append(("error", f"HTTP {response.status} {code}", None))
                return
            first = await response.content.readany()
            ttfb = time.perf_counter() - began
            body = first + await response.content.read()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        results.append(("error", type(exc).__name__, ttfb))
        return
    if b'"error"' in body or not body.endswith(b"data: [DONE]\n\n"):
        results.append(("error", "in-stream error or truncated", ttfb))
    else:
        results.append(("ok", None, ttfb))


async def drive(url: str, key: str, model: str, *, streams: int, ramp: float, limit: float, pids: list[int]) -> dict:
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=limit)
    results: list = []
    peak = 0.0
    sampling = True

    async def sample():
        nonlocal peak
        while sampling:
            peak = max(peak, sum(rss_mib(pid) or 0 for pid in pids))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sample())
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        for index in range(streams):
            tasks.append(asyncio.ensure_future(one_stream(session, url, key, model, results=results)))
            if ramp and index % 50 == 49:
                await asyncio.sleep(ramp * 50 / streams)
        done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*pending, return_exceptions=True)
    sampling = False
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    unfinished = streams - len(results)
    return {"results": results, "unfinished": unfinished, "peak_rss_mib": peak,
            "seconds": time.perf_counter() - started}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ---- orchestration ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hold", type=float, default=8.0, help="seconds the upstream holds each stream open")
    parser.add_argument("--ramp", type=float, default=4.0, help="seconds over which the streams are opened")
    parser.add_argument("--limit", type=float, default=90.0, help="seconds after which the load is stopped")
    parser.add_argument("--database", default="cbplatform_bench_concurrency")
    parser.add_argument("--redis-url", default=database.REDIS_URL)
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the gateway (e.g. CONNECTION_POOL_SIZE=100)")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one descriptor per stream, plus slack
    database.DB_NAME = args.database
    database.DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    database.REDIS_URL = args.redis_url
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    upstream_port, gateway_port, graphql_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    env = database.production_env(dict(os.environ))
    print("bench database: create if missing, migrate, seed", flush=True)
    database.ensure_database()
    database.migrate(env, ROOT, log_dir)
    database.flush_redis()
    seeded = database.seed(env, ROOT, log_dir, upstream_url)
    with ProcessSet() as procs:
        upstream = procs.start(Proc("concurrency-upstream", [
            sys.executable, "-m", "uvicorn", "bench.concurrency:upstream_app", "--host", "127.0.0.1", "--port",
            str(upstream_port), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
            "warning", "--backlog", "4096"], env={**os.environ, "BENCH_HOLD_SECONDS": str(args.hold)}, cwd=ROOT,
            log_dir=log_dir))
        gateway_env = {**env, "OPENAI_HOST": "127.0.0.1", "OPENAI_PORT": str(gateway_port),
                       "GRAPHQL_HOST": "127.0.0.1", "GRAPHQL_PORT": str(graphql_port),
                       **dict(item.split("=", 1) for item in args.gateway_env)}
        gateway = procs.start(Proc("concurrency-gateway", [sys.executable, "manage.py", "serve", "--workers",
                                                           str(args.workers), "--no-setup"],
                                   env=gateway_env, cwd=ROOT, log_dir=log_dir))
        wait_port(upstream_port, upstream)
        wait_http(f"http://127.0.0.1:{gateway_port}/health", gateway)
        url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        pids = gateway.server_pids()
        # Warm up (every worker loads its snapshot and opens its pools), then take the resting RSS.
        warm = asyncio.run(drive(url, seeded.api_key, seeded.model, streams=40, ramp=0, limit=60, pids=pids))
        warm_errors = Counter(kind for status, kind, _ in warm["results"] if status != "ok")
        time.sleep(1)
        rest = sum(rss_mib(pid) or 0 for pid in pids)
        print(f"warm-up: {len(warm['results'])} streams, errors {dict(warm_errors) or 0}; gateway workers "
              f"{len(pids)}, RSS {rest:.1f} MiB", flush=True)
        print(f"driving {args.streams} concurrent streams (opened over {args.ramp:.0f}s, each held "
              f"{args.hold:.0f}s upstream)", flush=True)
        run = asyncio.run(drive(url, seeded.api_key, seeded.model, streams=args.streams, ramp=args.ramp,
                              limit=args.limit, pids=pids))
    results = run["results"]
    errors = Counter(kind for status, kind, _ in results if status != "ok")
    if run["unfinished"]:
        errors["unfinished at the limit"] += run["unfinished"]
    ttfbs = [t for status, _, t in results if t is not None]
    delta_kib = (run["peak_rss_mib"] - rest) * 1024
    summary = {
        "streams": args.streams, "workers": args.workers, "hold_s": args.hold, "seconds": round(run["seconds"], 1),
        "ok": sum(1 for status, _, _ in results if status == "ok"), "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "ttfb_p50_ms": round(percentile(ttfbs, 0.5) * 1000, 1) if ttfbs else None,
        "ttfb_p99_ms": round(percentile(ttfbs, 0.99) * 1000, 1) if ttfbs else None,
        "ttfb_mean_ms": round(statistics.fmean(ttfbs) * 1000, 1) if ttfbs else None,
        "rss_rest_mib": round(rest, 1), "rss_peak_mib": round(run["peak_rss_mib"], 1),
        "rss_per_stream_kib": round(delta_kib / args.streams, 1), "gateway_env": args.gateway_env,
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), flush=True)
    (RESULTS / "concurrency.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
