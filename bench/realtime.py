"""`python -m bench.realtime`: GraphQL against REST, and `/ws` completion streams against SSE, as ratios
measured in the same run against a real `manage.py serve` (production settings, Postgres, Redis).

- GraphQL: `{ workflows(first: 20) { id name } }` over POST /graphql vs `GET /api/workflows/?limit=20`, the same
  tenant, key, data, client (aiohttp) and concurrency: requests/s and p50 latency.
- Completion streams: `{"type": "completion", …}` on `/ws` (one socket per client, streams one after another) vs
  the same request as SSE from `POST /v1/chat/completions` with `"stream": true` (one keep-alive session per
  client), the simulated provider (`simulated/echo`, no upstream cost): streams/s and first-chunk p50.

Each pair alternates candidate and baseline for a few rounds so a noisy neighbour hits both. Its own database
(`cbplatform_bench_realtime`) and Redis db 13, flushed first. Exits non-zero only when a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import psycopg

from . import database
from .procs import Proc, ProcessSet, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "cbplatform_bench_realtime"
REDIS_URL = "redis://127.0.0.1:6379/13"
TENANT = "bench-realtime"
MODEL = "simulated/echo"
WORKFLOWS = 20
GRAPHQL_QUERY = "{ workflows(first: 20) { id name } }"
MESSAGES = [{"role": "user", "content": "Say something about owls in a few words."}]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.realtime", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating candidate/baseline rounds (default 2)")
    parser.add_argument("--query-clients", type=int, default=10, help="concurrent clients, GraphQL/REST (10)")
    parser.add_argument("--stream-clients", type=int, default=20, help="concurrent clients, /ws and SSE (20)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    return parser.parse_args(argv)


def setup(log_dir: Path, *, fresh: bool) -> dict:
    env = database.production_env(dict(os.environ))
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}", "REDIS_URL": REDIS_URL,
                "CB_SIMULATED_PROVIDER": "true", "ROUTE_LOG": "off"})
    database.ensure_database(fresh=fresh, name=DB_NAME)
    database.migrate(env, ROOT, log_dir)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    os.environ.update(env)
    import django

    django.setup()
    return env


def seed() -> str:
    """The tenant, WORKFLOWS small workflows, and a key that may read the management API and infer."""
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant
    from apps.workflows import services as workflow_services

    Tenant.objects.filter(slug=TENANT).delete()
    tenant = tenant_services.tenant_create(slug=TENANT)
    for i in range(WORKFLOWS):
        workflow_services.workflow_save(tenant, definition={
            "id": f"bench_rt_{i:02d}", "name": f"Bench workflow {i}", "places": ["a", "b"], "initial_place": "a",
            "final_places": ["b"], "transitions": [{"id": "go", "from_places": ["a"], "to_place": "b"}]})
    _, secret = tenant_services.api_key_create(tenant=tenant, name="bench", scopes=["inference", "read"])
    return secret


@dataclass
class Run:
    done: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # ms: the whole request, or to the first chunk
    elapsed: float = 0.0


async def drive(one: Callable[[object], Awaitable[float]], clients: list, seconds: float) -> Run:
    """Each client calls `one(client)` back to back for `seconds`; `one` returns the latency it measures (ms)."""
    run = Run()
    deadline = time.monotonic() + seconds

    async def loop(client):
        while time.monotonic() < deadline:
            try:
                run.latencies.append(await one(client))
                run.done += 1
            except Exception as exc:  # counted and reported; the run goes on
                run.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(0.05)

    started = time.monotonic()
    await asyncio.gather(*(loop(c) for c in clients))
    run.elapsed = time.monotonic() - started
    return run


class Queries:
    def __init__(self, base: str, key: str):
        self.base, self.headers = base, {"Authorization": f"Bearer {key}"}

    async def graphql(self, session: aiohttp.ClientSession) -> float:
        began = time.perf_counter()
        async with session.post(f"{self.base}/graphql", data=orjson.dumps({"query": GRAPHQL_QUERY}),
                                headers={**self.headers, "Content-Type": "application/json"}) as response:
            body = orjson.loads(await response.read())
        took = (time.perf_counter() - began) * 1000
        if response.status != 200 or body.get("errors") or len(body["data"]["workflows"]) != WORKFLOWS:
            raise RuntimeError(f"graphql {response.status}: {str(body)[:200]}")
        return took

    async def rest(self, session: aiohttp.ClientSession) -> float:
        began = time.perf_counter()
        async with session.get(f"{self.base}/api/workflows/?limit={WORKFLOWS}", headers=self.headers) as response:
            body = orjson.loads(await response.read())
        took = (time.perf_counter() - began) * 1000
        if response.status != 200 or len(body.get("results", ())) != WORKFLOWS:
            raise RuntimeError(f"rest {response.status}: {str(body)[:200]}")
        return took


class Streams:
    def __init__(self, base: str, key: str):
        self.base, self.headers = base, {"Authorization": f"Bearer {key}"}
        self.counter = 0

    async def open_socket(self, session: aiohttp.ClientSession):
        socket = await session.ws_connect(self.base.replace("http", "ws", 1) + "/ws", headers=self.headers)
        first = orjson.loads((await socket.receive(timeout=10)).data)
        if first.get("type") != "connection_ack":
            raise RuntimeError(f"/ws: expected connection_ack, got {first}")
        return socket

    async def ws(self, socket) -> float:
        self.counter += 1
        stream_id = f"s{self.counter}"
        began = time.perf_counter()
        await socket.send_bytes(orjson.dumps({"type": "completion", "id": stream_id, "model": MODEL,
                                              "messages": MESSAGES}))
        first = None
        while True:
            frame = await socket.receive(timeout=30)
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise RuntimeError(f"/ws closed: {frame.type} {frame.data}")
            message = orjson.loads(frame.data)
            kind = message.get("type")
            if message.get("id") != stream_id:
                continue
            if kind == "content_chunk" and first is None:
                first = (time.perf_counter() - began) * 1000
            elif kind == "completed":
                if first is None:
                    raise RuntimeError("/ws: completed without a content_chunk")
                return first
            elif kind == "error":
                raise RuntimeError(f"/ws error: {message}")

    async def sse(self, session: aiohttp.ClientSession) -> float:
        began = time.perf_counter()
        first = None
        done = False
        async with session.post(f"{self.base}/v1/chat/completions", headers={
                **self.headers, "Content-Type": "application/json"},
                data=orjson.dumps({"model": MODEL, "messages": MESSAGES, "stream": True})) as response:
            if response.status != 200:
                raise RuntimeError(f"sse {response.status}: {(await response.text())[:200]}")
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                chunk = orjson.loads(payload)
                if first is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
                    first = (time.perf_counter() - began) * 1000
        if not done or first is None:
            raise RuntimeError("sse: the stream ended without content or [DONE]")
        return first


async def pair(name: str, candidate, baseline, clients: list, args) -> tuple[Run, Run]:
    """Warm both up, then alternate candidate and baseline for `rounds`; merge each side's rounds."""
    await drive(candidate, clients, 1.0)
    await drive(baseline, clients, 1.0)
    merged = (Run(), Run())
    for _ in range(args.rounds):
        for side, one in zip(merged, (candidate, baseline), strict=True):
            run = await drive(one, clients, args.seconds)
            side.done += run.done
            side.errors += run.errors
            side.latencies += run.latencies
            side.elapsed += run.elapsed
    print(f"  {name}: measured", flush=True)
    return merged


async def measure(base: str, key: str, args) -> dict:
    queries, streams = Queries(base, key), Streams(base, key)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as shared:
        # One session per client: its own keep-alive connection, as separate clients would have.
        query_sessions = [aiohttp.ClientSession() for _ in range(args.query_clients)]
        stream_sessions = [aiohttp.ClientSession() for _ in range(args.stream_clients)]
        try:
            graphql, rest = await pair("graphql vs rest", queries.graphql, queries.rest, query_sessions, args)
            sockets = [await streams.open_socket(shared) for _ in range(args.stream_clients)]
            try:
                # The /ws side runs on a socket per client; the SSE side on a keep-alive session per client.
                by_socket = dict(zip(sockets, stream_sessions, strict=True))

                async def sse(socket):
                    return await streams.sse(by_socket[socket])

                ws, sse_run = await pair("ws vs sse", streams.ws, sse, sockets, args)
            finally:
                for socket in sockets:
                    await socket.close()
        finally:
            for session in query_sessions + stream_sessions:
                await session.close()
    return {"graphql": graphql, "rest": rest, "ws": ws, "sse": sse_run}


class ConnectionWatch(threading.Thread):
    """The peak number of Postgres connections to the bench database while the load runs: Django under ASGI
    with persistent connections (CONN_MAX_AGE > 0) opens one per request thread, and they pile up."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stopping = 0, threading.Event()

    def run(self):
        with psycopg.connect(database.ADMIN_DSN, autocommit=True) as conn:
            while not self.stopping.wait(0.25):
                count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                     (DB_NAME,)).fetchone()[0]
                self.peak = max(self.peak, count)


def p50(run: Run) -> float:
    return statistics.median(run.latencies) if run.latencies else float("nan")


def rate(run: Run) -> float:
    return run.done / run.elapsed if run.elapsed else 0.0


def report(runs: dict, args, load_before: tuple, peak_connections: int) -> int:
    load_after = os.getloadavg()
    print(f"bench.realtime: {args.workers} server workers, {os.cpu_count()} CPUs, load "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before / {' '.join(f'{x:.2f}' for x in load_after)} after; "
          f"{args.rounds} x {args.seconds:g}s per side; peak Postgres connections {peak_connections}")
    print(f"  {'case':<46} {'per s':>9} {'p50 ms':>9} {'n':>7} {'errors':>7}")
    rows = (("GraphQL { workflows(first: 20) { id name } }", "graphql", f"{args.query_clients} clients"),
            ("REST GET /api/workflows/?limit=20 (baseline)", "rest", ""),
            ("/ws completion streams (first chunk)", "ws", f"{args.stream_clients} clients"),
            ("SSE /v1/chat/completions stream (baseline)", "sse", ""))
    for label, name, _ in rows:
        run = runs[name]
        print(f"  {label:<46} {rate(run):>9.1f} {p50(run):>9.2f} {run.done:>7} {len(run.errors):>7}")
    for candidate, baseline, what in (("graphql", "rest", "GraphQL / REST"), ("ws", "sse", "/ws / SSE")):
        c, b = runs[candidate], runs[baseline]
        print(f"  ratio {what:<40} {rate(c) / rate(b) if rate(b) else float('nan'):>9.2f} "
              f"{p50(c) / p50(b):>9.2f}   (throughput, p50 latency; >1 = more per s / slower)")
    errors = [e for run in runs.values() for e in run.errors]
    for error in sorted(set(errors))[:5]:
        print(f"  error: {error}", file=sys.stderr)
    return 1 if errors else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    env = setup(log_dir, fresh=args.fresh)
    key = seed()
    from django.db import connections  # why: Django is set up only by setup(), with the bench's settings

    connections.close_all()  # the server's connections are the ones counted
    port = free_port()
    server_env = {**env, "OPENAI_HOST": "127.0.0.1", "OPENAI_PORT": str(port), "GRAPHQL_HOST": "127.0.0.1",
                  "GRAPHQL_PORT": str(port)}
    with ProcessSet() as procs:
        server = procs.start(Proc("server", [sys.executable, "manage.py", "serve", "--workers", str(args.workers),
                                             "--no-setup"], env=server_env, cwd=ROOT, log_dir=log_dir))
        wait_http(f"http://127.0.0.1:{port}/health", server)
        load_before = os.getloadavg()
        watch = ConnectionWatch()
        watch.start()
        try:
            runs = asyncio.run(measure(f"http://127.0.0.1:{port}", key, args))
        finally:
            watch.stopping.set()
            watch.join(5)
    print(f"(server log in {log_dir})")
    return report(runs, args, load_before, watch.peak)


if __name__ == "__main__":
    sys.exit(main())
