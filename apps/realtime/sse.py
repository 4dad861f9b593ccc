"""`GET /api/workflow-instances/<id>/events/stream`: an instance's events as server-sent events.

A small ASGI app (dispatched by `cbplatform/asgi.py` before Django), so a connection costs a coroutine, not a
Django worker thread. EventSource-compatible: `id:` lines carry event ids, so a browser that reconnects sends
`Last-Event-ID` and gets what it missed (replayed from the table, then live, by the relay's `seq`; see
`event_feed.py`); `?after=<event id>` does the same for other clients. A comment line every
`KEEPALIVE_SECONDS` keeps proxies from closing an idle stream. Authentication as on the management API: an
API key (`read` or `admin` scope) in the headers, or the admin session (`X-CB-Tenant` to pick a tenant);
another tenant's instance is the same 404 as a missing one."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs

import orjson
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async

from apps.core.errors import ApiError, InvalidRequest, MethodNotAllowed
from apps.workflows.access import instance_access_by_id

from . import groups
from .event_feed import workflow_event_feed
from .socket_auth import principal_for, scope_headers

PATH = re.compile(r"^/api/workflow-instances/(?P<id>[^/]+)/events/stream/?$")
KEEPALIVE_SECONDS = 15.0


def is_instance_events_path(path: str) -> bool:
    return path.startswith("/api/workflow-instances/") and PATH.match(path) is not None


async def _json(send, status: int, body: dict, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def _after(scope) -> int | None:
    raw = scope_headers(scope).get("last-event-id")
    if raw is None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after")
        raw = values[-1] if values else None
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest("Last-Event-ID / ?after= must be an event id (a non-negative integer).",
                             code="invalid", param="after")
    return int(raw)


def _frame(event: dict) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (event["id"], orjson.dumps(event))


async def _stream(scope, receive, send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        raise MethodNotAllowed(f'Method "{scope["method"]}" not allowed.', code="method_not_allowed")
    after = _after(scope)
    principal = await principal_for(scope)
    principal.require("read")
    instance_id = PATH.match(scope["path"])["id"]
    instance = await database_sync_to_async(instance_access_by_id)(principal.tenant, instance_id)
    tenant_id = principal.tenant.id
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no")]})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.body", "body": b"retry: 2000\n: connected\n\n", "more_body": True})
    feed = workflow_event_feed(groups.instance(tenant_id, instance.id), tenant_id=tenant_id,
                               filters={"instance_id": instance.id}, after=after)
    pump = asyncio.ensure_future(_pump(feed, send))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, gone):
            task.cancel()
        await asyncio.gather(pump, gone, return_exceptions=True)
        await feed.aclose()


async def _pump(feed, send) -> None:
    next_event = None
    try:
        while True:
            if next_event is None:
                next_event = asyncio.ensure_future(anext(feed))
            done, _ = await asyncio.wait({next_event}, timeout=KEEPALIVE_SECONDS)
            if not done:
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
                continue
            event, next_event = next_event.result(), None
            await send({"type": "http.response.body", "body": _frame(event), "more_body": True})
    finally:
        if next_event is not None:  # the feed must not be mid-step when it is closed
            next_event.cancel()
            await asyncio.gather(next_event, return_exceptions=True)


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _app(scope, receive, send) -> None:
    try:
        await _stream(scope, receive, send)
    except ApiError as error:
        headers = [(b"allow", b"GET, HEAD")] if error.status == 405 else []
        body = {"detail": error.message, "code": error.code or error.type}
        if error.param and error.status == 400:
            body = {error.param: [error.message], "code": error.code or "invalid"}
        await _json(send, error.status, body, headers)


instance_events_app = AuthMiddlewareStack(_app)
