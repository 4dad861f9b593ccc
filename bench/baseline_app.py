"""The baseline: the thinnest useful ASGI pass-through proxy, the yardstick of the architecture's hot path.

No Django, no auth, no routing, no JSON parsing: read the body, forward it over one pooled aiohttp
session per worker process, return the upstream's status and body; relay streams chunk by chunk.
Whatever the gateway costs beyond this is the price of its features.
"""

from __future__ import annotations

import os

import aiohttp

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8000").rstrip("/")
FORWARDED_HEADERS = (b"content-type", b"authorization")

_session: aiohttp.ClientSession | None = None


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return None
    body = await _read_body(receive)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
               if name in FORWARDED_HEADERS}
    async with _session.request(scope["method"], UPSTREAM + scope["path"], data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("content-type", "application/octet-stream").encode("latin-1")
        if upstream.content_type == "text/event-stream":
            return await _relay_stream(send, upstream, content_type)
        payload = await upstream.read()
        response_headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": upstream.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
    return None


async def _relay_stream(send, upstream: aiohttp.ClientResponse, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": upstream.status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache")]})
    async for data in upstream.content.iter_any():
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _read_body(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _lifespan(receive, send) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Same pool shape as the gateway's Upstream: keep-alive HTTP/1.1, up to 100 connections.
            connector = aiohttp.TCPConnector(limit=100, limit_per_host=100, keepalive_timeout=30)
            _session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
