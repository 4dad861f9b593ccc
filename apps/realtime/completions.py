"""Background completions: `start_background_completion(tenant, request, *, completion_id, …)` runs a streamed
completion through the in-process completion API (routing, budgets, ledger) and publishes it — the completion
protocol's messages to `completionStream(completionId)`, the text to `llmStream(requestId: completionId)`.
GraphQL's `createCompletion(stream: true)` calls it. Another tenant's completion id is refused (logged)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading

from channels.layers import get_channel_layer

from apps.gateway import completion_api

from . import groups, stream_backlog, stream_owners
from .completion_socket import produce
from .event_messages import STREAM_MESSAGE
from .relay_loop import relay_loop
from .stream_publishing import now_iso

log = logging.getLogger(__name__)


def _completion_payload(message: dict) -> dict:
    kind = message["type"]
    metadata = {k: v for k, v in message.items() if k not in ("type", "id", "content", "usage")}
    return {"event_type": kind, "content": message.get("content"), "metadata": metadata or None,
            "usage": message.get("usage"), "agent_status": None, "done": kind in ("completed", "error")}


async def run_background_completion(tenant, request: dict, *, completion_id: str, **labels) -> None:
    tenant_id = tenant if isinstance(tenant, int) else tenant.id
    if not await stream_owners.claim("completion", completion_id, tenant_id):
        log.warning("completion id %s belongs to another tenant; not started", completion_id)
        return
    await stream_owners.claim("llm", completion_id, tenant_id)
    layer = get_channel_layer()
    completion_group = groups.completion(tenant_id, completion_id)
    llm_group = groups.llm(tenant_id, completion_id)
    pieces = 0

    async def emit(message: dict) -> None:
        nonlocal pieces
        event = await stream_backlog.append("completion", tenant_id, completion_id, _completion_payload(message))
        await layer.group_send(completion_group, {"type": STREAM_MESSAGE, "payload": event})
        kind = message["type"]
        if kind == "content_chunk":
            pieces += 1
            payload = {"id": completion_id, "content": message["content"], "tokens": pieces, "cost": None,
                       "done": False, "error": None, "timestamp": now_iso()}
        elif kind in ("completed", "error"):
            payload = {"id": completion_id, "content": "", "done": True, "timestamp": now_iso(),
                       "tokens": (message.get("usage") or {}).get("completion_tokens", pieces),
                       "cost": message.get("cost"),
                       "error": {"code": message["code"], "message": message["message"]} if kind == "error" else None}
        else:
            return
        payload = await stream_backlog.append("llm", tenant_id, completion_id, payload)
        await layer.group_send(llm_group, {"type": STREAM_MESSAGE, "payload": payload})

    body = {**request, "stream_options": {**(request.get("stream_options") or {}), "include_usage": True}}
    body.pop("stream", None)
    await produce(tenant, body, completion_id, emit, request_id=labels.pop("request_id", None), **labels)


def start_background_completion(tenant, request: dict, *, completion_id: str, api_key_id: int | None = None,
                                request_id: str | None = None):
    """Run a streamed completion in the background, publishing to `completionStream(completionId)` and
    `llmStream(requestId: completionId)`. From a coroutine: a task on its loop; from a thread of the web
    process: a task on the server's loop (the shared gateway runtime); elsewhere: a thread of its own."""
    coro = _logged(run_background_completion(tenant, request, completion_id=completion_id, api_key_id=api_key_id,
                                             request_id=request_id), completion_id)
    try:
        return asyncio.get_running_loop().create_task(coro)
    except RuntimeError:
        pass
    if relay_loop.on_server_loop:
        # A fresh context: the caller's (a synchronous view's) names a per-request executor that is gone once
        # the view returns, and anything thread-sensitive the completion awaits would be sent there.
        loop = relay_loop.loop
        loop.call_soon_threadsafe(lambda: loop.create_task(coro, context=contextvars.Context()),
                                  context=contextvars.Context())
        return None
    thread = threading.Thread(target=asyncio.run, args=(_owning_loop(coro),), name=f"completion-{completion_id}",
                              daemon=True)
    thread.start()
    return thread


async def _logged(coro, completion_id) -> None:
    """Nobody awaits a background completion: its failure is logged here (ApiErrors went to the stream)."""
    try:
        await coro
    except Exception:
        log.exception("background completion %s failed", completion_id)


async def _owning_loop(coro) -> None:
    """On a loop of our own: shut the gateway runtime this loop started when done."""
    try:
        await coro
    finally:
        await completion_api.close()
