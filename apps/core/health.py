"""GET /health: a middleware-free ASGI probe answering JSON.

Each app registers what it owns (core: the database and Redis; the gateway: its providers' circuits), so core
depends on nothing above it:

- `register_health_check(name, check)`: `await check()` raises when the dependency is down; any down check
  makes the answer 503 "unhealthy". Shown under `checks`.
- `register_health_section(name, report)`: `await report()` returns a dict shown as a top-level key; it informs
  and never fails the probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from apps.core import redis as cb_redis

CHECK_TIMEOUT_SECONDS = 3
SECTION_TIMEOUT_SECONDS = 2


@dataclass(frozen=True, slots=True)
class _Registered:
    call: Callable[[], Awaitable]
    enabled: Callable[[], bool]


_checks: dict[str, _Registered] = {}
_sections: dict[str, _Registered] = {}


def register_health_check(name: str, check: Callable[[], Awaitable[None]], *,
                          enabled: Callable[[], bool] = lambda: True) -> None:
    """Add (or replace) a check; `enabled()` is asked per probe (e.g. Redis only where it is configured)."""
    _checks[name] = _Registered(check, enabled)


def register_health_section(name: str, report: Callable[[], Awaitable[dict]], *,
                            enabled: Callable[[], bool] = lambda: True) -> None:
    _sections[name] = _Registered(report, enabled)


def unregister_health_check(name: str) -> None:
    """Remove a check or section (tests; an app that turns a feature off)."""
    _checks.pop(name, None)
    _sections.pop(name, None)


def _database_check() -> None:
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close_if_unusable_or_obsolete()


_redis_by_loop: dict[int, object] = {}


async def _redis_ping() -> None:
    loop_id = id(asyncio.get_running_loop())
    client = _redis_by_loop.get(loop_id)
    if client is None:
        client = _redis_by_loop[loop_id] = cb_redis.async_client()
    await client.ping()


register_health_check("database", sync_to_async(_database_check, thread_sensitive=False))
register_health_check("redis", _redis_ping, enabled=cb_redis.configured)


async def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # a probe reports failures, it does not raise them
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _section(report) -> dict:
    try:
        return await asyncio.wait_for(report(), timeout=SECTION_TIMEOUT_SECONDS)
    except Exception as exc:  # a probe reports, it does not raise
        return {"error": type(exc).__name__}


async def health_report() -> tuple[int, dict]:
    checks = {name: await _timed(c.call) for name, c in list(_checks.items()) if c.enabled()}
    healthy = all(c["status"] == "up" for c in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "version": settings.VERSION,
        "embedded": bool(getattr(settings, "EMBEDDED", False)),
        "checks": checks,
    }
    for name, section in list(_sections.items()):
        if section.enabled():
            body[name] = await _section(section.call)
    return (200 if healthy else 503), body


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
