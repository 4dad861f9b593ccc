"""GET /health: a middleware-free ASGI probe of the database and Redis, answering JSON."""

from __future__ import annotations

import asyncio
import time

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from apps.core import redis as cb_redis

_redis_by_loop: dict[int, object] = {}


def _database_check() -> None:
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close_if_unusable_or_obsolete()


async def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=3)
    except Exception as exc:  # a probe reports failures, it does not raise them
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _redis_ping() -> None:
    loop_id = id(asyncio.get_running_loop())
    client = _redis_by_loop.get(loop_id)
    if client is None:
        client = _redis_by_loop[loop_id] = cb_redis.async_client()
    await client.ping()


async def health_report() -> tuple[int, dict]:
    checks = {"database": await _timed(sync_to_async(_database_check, thread_sensitive=False))}
    if cb_redis.configured():
        checks["redis"] = await _timed(_redis_ping)
    healthy = all(c["status"] == "up" for c in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "version": settings.VERSION,
        "embedded": bool(getattr(settings, "EMBEDDED", False)),
        "checks": checks,
        "providers": await _provider_health(),
    }
    return (200 if healthy else 503), body


async def _provider_health() -> dict:
    """Circuit states of global providers, from the gateway's shared health store (never fails the probe)."""
    from apps.gateway.app import gateway_app

    try:
        return await asyncio.wait_for(gateway_app.runtime.provider_health(), timeout=2)
    except Exception as exc:  # a probe reports, it does not raise
        return {"error": type(exc).__name__}


async def health_app(scope, receive, send):
    if scope["method"] not in ("GET", "HEAD"):
        status, body = 405, {"error": {"message": "Use GET /health.", "type": "invalid_request_error",
                                       "param": None, "code": "method_not_allowed"}}
    else:
        status, body = await health_report()
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
