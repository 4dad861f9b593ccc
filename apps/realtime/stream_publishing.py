"""Publishing a `/v1` request's output to its `llmStream` group (the sink `apps.gateway.stream_publish` asks
for when a request wants it).

Publishing never slows the request it watches: chunks go into a bounded queue that a task drains into the
channel layer; if subscribers' layer cannot keep up and the queue fills, further chunks are dropped (the
`done` event still reports the exact token count and cost)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from channels.layers import get_channel_layer

from . import groups, stream_backlog, stream_owners
from .completion_messages import money
from .event_messages import STREAM_MESSAGE

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024


def now_iso() -> str:
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
                       "done": False, "error": None, "timestamp": now_iso()})

    def finish(self, *, usage=None, cost=None, error=None) -> None:
        tokens = (usage or {}).get("completion_tokens", self.pieces)
        payload = {"id": self.request_id, "content": "", "tokens": tokens,
                   "cost": money(cost), "done": True, "error": error,
                   "timestamp": now_iso()}
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
                    payload = await stream_backlog.append("llm", self.tenant_id, self.request_id, payload)
                    await layer.group_send(group, {"type": STREAM_MESSAGE, "payload": payload})
                except Exception:
                    log.exception("llmStream %s: publishing failed", self.request_id)
            if payload["done"]:
                return
