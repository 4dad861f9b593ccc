"""The completion protocol on `/ws` and `/stream` (a socket that offered no GraphQL subprotocol).

Client: `{"type": "completion", "id": "a", "model": …, "messages": […], …}` (any /v1 chat field and
`circuit_breaker` options; `id` is the client's, to run several streams on one socket), `{"type": "cancel",
"id": "a"}`, `{"type": "ping"}`, and `{"type": "connection_init", "payload": {"Authorization": "Bearer cb-…"}}`
when the handshake carried no credentials. Server: `connection_ack`, then per stream `thinking_status`,
`content_chunk`…, `tool_call`, and `completed` (usage, cost) or `error` (code, message), each with its `id`;
`cancelled` after a cancel.

Each stream runs `completion_api.stream` (routing, budgets, ledger) in a task that feeds a bounded queue; the
socket writer drains it. When the client reads slowly, the writer waits on the socket (uvicorn applies TCP
back-pressure to `send`), the queue fills, and the reader stops pulling chunks from the upstream — memory per
stream stays bounded by the queue size."""

from __future__ import annotations

import asyncio
import os

from apps.core.errors import ApiError, AuthenticationFailed, InvalidRequest
from apps.gateway import completion_api

from .completion_messages import ChunkTranslator, error_message
from .socket_auth import principal_for

QUEUE_SIZE = 32
MAX_STREAMS = 16
_NOT_FORWARDED = ("type", "id", "stream")


def completion_body(message: dict) -> dict:
    body = {k: v for k, v in message.items() if k not in _NOT_FORWARDED}
    body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return body


def key_id(principal) -> int | None:
    return principal.api_key.id if principal.api_key is not None else None


class CompletionSocket:
    def __init__(self, scope, send, close):
        self.scope, self.send, self.close = scope, send, close
        self.principal = None
        self.streams: dict[str, asyncio.Task] = {}

    async def opened(self) -> None:
        try:
            self.principal = await principal_for(self.scope)
        except AuthenticationFailed as error:
            if error.code == "missing_api_key":
                return None  # the credentials may come in connection_init
            await self.send(error_message(None, error))
            return await self.close(4401, "Unauthorized")
        except ApiError as error:
            await self.send(error_message(None, error))
            return await self.close(4403, "Forbidden")
        await self.send({"type": "connection_ack"})
        return None

    async def closed(self) -> None:
        for task in list(self.streams.values()):
            task.cancel()
        self.streams.clear()

    async def receive(self, message) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            return await self.send({"type": "pong"})
        if kind == "connection_init":
            return await self._init(message.get("payload"))
        if kind == "completion":
            return await self._start(message)
        if kind == "cancel":
            return await self._cancel(message.get("id"))
        stream_id = message.get("id") if isinstance(message, dict) else None
        return await self.send(error_message(stream_id, InvalidRequest(
            "Unsupported message: send 'completion', 'cancel', 'ping' or 'connection_init'.",
            code="unsupported_message", param="type")))

    async def _init(self, payload) -> None:
        try:
            self.principal = await principal_for(self.scope, payload)
        except ApiError as error:
            await self.send(error_message(None, error))
            return await self.close(4401, "Unauthorized")
        return await self.send({"type": "connection_ack"})

    async def _start(self, message: dict) -> None:
        stream_id = message.get("id")
        if stream_id is None:
            stream_id = "cmpl_" + os.urandom(8).hex()
        if not isinstance(stream_id, str | int) or isinstance(stream_id, bool) or len(str(stream_id)) > 200:
            return await self.send(error_message(None, InvalidRequest("'id' must be a string.", param="id")))
        if self.principal is None:
            return await self.send(error_message(stream_id, AuthenticationFailed(
                "Send connection_init with an API key first.", code="missing_api_key")))
        try:
            self.principal.require("inference")
        except ApiError as error:
            return await self.send(error_message(stream_id, error))
        if stream_id in self.streams:
            return await self.send(error_message(stream_id, InvalidRequest(
                f"A stream with id {stream_id!r} is running.", code="duplicate_id", param="id")))
        if len(self.streams) >= MAX_STREAMS:
            return await self.send(error_message(stream_id, InvalidRequest(
                f"At most {MAX_STREAMS} streams at once per socket.", code="too_many_streams")))
        self.streams[stream_id] = asyncio.ensure_future(self._run(stream_id, completion_body(message)))
        return None

    async def _cancel(self, stream_id) -> None:
        task = self.streams.pop(stream_id, None) if isinstance(stream_id, str | int) else None
        if task is None:
            return await self.send(error_message(stream_id, InvalidRequest(
                f"No running stream with id {stream_id!r}.", code="unknown_stream", param="id")))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return await self.send({"type": "cancelled", "id": stream_id})

    async def _run(self, stream_id, body: dict) -> None:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        producer = asyncio.ensure_future(produce(self.principal.tenant, body, stream_id, queue.put,
                                                 api_key_id=key_id(self.principal)))
        try:
            while True:
                message = await queue.get()
                await self.send(message)
                if message["type"] in ("completed", "error"):
                    break
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            if self.streams.get(stream_id) is asyncio.current_task():
                del self.streams[stream_id]


async def produce(tenant, body: dict, stream_id, emit, *, api_key_id=None, request_id=None) -> None:
    """Run one streamed completion and `await emit(message)` each protocol message, ending with `completed`
    or `error`. `emit` may block (a full queue): the upstream is then not read until it returns."""
    translator = ChunkTranslator(stream_id)
    report: dict = {}
    await emit({"type": "thinking_status", "id": stream_id, "status": "thinking"})
    try:
        async for chunk in completion_api.stream(tenant, body, api_key_id=api_key_id, request_id=request_id,
                                                 report=report):
            for message in translator.chunk(chunk):
                await emit(message)
    except ApiError as error:
        await emit(error_message(stream_id, error))
        return
    for message in translator.finish(report):
        await emit(message)
