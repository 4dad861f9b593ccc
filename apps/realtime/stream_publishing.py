"""Publishing LLM output to channel-layer groups: `/v1` requests that asked (`llmStream`), and background
completions (`completionStream`, and `llmStream` under the completion id).

Publishing never slows the request it watches: chunks go into a bounded queue that a task drains into the
channel layer; if subscribers' layer cannot keep up and the queue fills, further chunks are dropped (the
`done` event still reports the exact token count and cost)."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime

from channels.layers import get_channel_layer

from . import groups, stream_owners
from .completion_socket import produce
from .graphql.subscriptions import STREAM_MESSAGE
from .relay_loop import relay_loop

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _content(chunk: dict) -> str:
    choices = chunk.get("choices") or []
    return ((choices[0].get("delta") or {}).get("content") or "") if choices else ""


class LlmStreamSink:
    """`apps.gateway.stream_publish`'s sink for one request (created on the request's event loop)."""

    def __init__(self, tenant_id: int, request_id: str):
        self.tenant_id, self.request_id = tenant_id, request_id
        self.pieces = 0
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.task = asyncio.get_running_loop().create_task(self._send())

    def _put(self, payload: dict) -> None:
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("llmStream %s: subscribers too slow, a chunk was dropped", self.request_id)

    def chunk(self, chunk: dict) -> None:
        content = _content(chunk)
        if content:
            self.pieces += 1
            self._put({"id": self.request_id, "content": content, "tokens": self.pieces, "cost": None,
                       "done": False, "error": None, "timestamp": _now()})

    def finish(self, *, usage=None, cost=None, error=None) -> None:
        tokens = (usage or {}).get("completion_tokens", self.pieces)
        payload = {"id": self.request_id, "content": "", "tokens": tokens,
                   "cost": str(cost) if cost is not None else None, "done": True, "error": error,
                   "timestamp": _now()}
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:  # the last word must arrive: make room for it
            self.queue.get_nowait()
            self.queue.put_nowait(payload)

    async def _send(self) -> None:
        owned = await stream_owners.claim("llm", self.request_id, self.tenant_id)
        layer = get_channel_layer()
        group = groups.llm(self.tenant_id, self.request_id)
        while True:
            payload = await self.queue.get()
            if owned:
                try:
                    await layer.group_send(group, {"type": STREAM_MESSAGE, "payload": payload})
                except Exception:
                    log.exception("llmStream %s: publishing failed", self.request_id)
            if payload["done"]:
                return


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
        await layer.group_send(completion_group, {"type": STREAM_MESSAGE, "payload": _completion_payload(message)})
        kind = message["type"]
        if kind == "content_chunk":
            pieces += 1
            payload = {"id": completion_id, "content": message["content"], "tokens": pieces, "cost": None,
                       "done": False, "error": None, "timestamp": _now()}
        elif kind in ("completed", "error"):
            payload = {"id": completion_id, "content": "", "done": True, "timestamp": _now(),
                       "tokens": (message.get("usage") or {}).get("completion_tokens", pieces),
                       "cost": message.get("cost"),
                       "error": {"code": message["code"], "message": message["message"]} if kind == "error" else None}
        else:
            return
        await layer.group_send(llm_group, {"type": STREAM_MESSAGE, "payload": payload})

    body = {**request, "stream_options": {**(request.get("stream_options") or {}), "include_usage": True}}
    body.pop("stream", None)
    await produce(tenant, body, completion_id, emit, request_id=labels.pop("request_id", None), **labels)


def start_background_completion(tenant, request: dict, *, completion_id: str, api_key_id: int | None = None,
                                request_id: str | None = None):
    """Run a streamed completion in the background, publishing to `completionStream(completionId)` and
    `llmStream(requestId: completionId)`. From a coroutine: a task on its loop; from a thread of the web
    process: a task on the server's loop (the shared gateway runtime); elsewhere: a thread of its own."""
    coro = run_background_completion(tenant, request, completion_id=completion_id, api_key_id=api_key_id,
                                     request_id=request_id)
    try:
        return asyncio.get_running_loop().create_task(coro)
    except RuntimeError:
        pass
    if relay_loop.running:
        return asyncio.run_coroutine_threadsafe(coro, relay_loop.loop)
    thread = threading.Thread(target=asyncio.run, args=(coro,), name=f"completion-{completion_id}", daemon=True)
    thread.start()
    return thread
