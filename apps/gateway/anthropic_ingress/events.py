"""Anthropic's streaming events: OpenAI chunks translated into message_start, ping, content_block_start /
_delta / _stop, message_delta (stop reason and usage) and message_stop; errors after the first byte as an
`error` event. `pump` writes either kind of stream (translated here, or Anthropic's own events relayed by the
pass-through) and ends the response."""

from __future__ import annotations

import orjson

from apps.core.errors import UpstreamError

from ..context import RequestContext
from ..http import Responder
from ..pipeline import note_chunk
from .responses import error_object, stop_reason, usage


def frame(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ChunkEvents:
    """OpenAI chunks → Anthropic event frames, one instance per stream. Text and tool calls open content
    blocks in the order they arrive; the stop reason and the usage wait for the end of the stream (OpenAI
    sends usage after the finish reason), so message_start carries the gateway's quick estimate of the prompt and
    message_delta the upstream's counts (clients take message_delta's as final)."""

    __slots__ = ("ctx", "finish", "index", "message", "open", "started", "stop_sequences", "tools")

    def __init__(self, ctx: RequestContext, *, message_id: str, model: str, stop_sequences: list[str],
                 input_tokens: int = 0):
        """`input_tokens`: message_start's estimate (the upstream's count comes with message_delta)."""
        self.ctx = ctx
        self.message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
                        "stop_reason": None, "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 0}}
        self.stop_sequences = stop_sequences
        self.started = False
        self.index = -1  # the current content block
        self.open: str | None = None  # "text" | tool-call index as str, while a block is open
        self.tools: dict[int, int] = {}  # OpenAI tool-call index → content block index
        self.finish: dict = {}

    def _block(self, out: list[bytes], key: str, block: dict) -> None:
        self._close(out)
        self.index += 1
        self.open = key
        out.append(frame("content_block_start", {"type": "content_block_start", "index": self.index,
                                                 "content_block": block}))

    def _close(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(frame("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.open = None

    def _delta(self, out: list[bytes], index: int, delta: dict) -> None:
        out.append(frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))

    def start(self) -> bytes:
        self.started = True
        return (frame("message_start", {"type": "message_start", "message": self.message})
                + frame("ping", {"type": "ping"}))

    def feed(self, batch: list[dict]) -> bytes:
        out: list[bytes] = [] if self.started else [self.start()]
        for chunk in batch:
            if not note_chunk(self.ctx, chunk):  # the usage chunk: ctx.usage has it
                continue
            choice = (chunk.get("choices") or [{}])[0]
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.open != "text":
                    self._block(out, "text", {"type": "text", "text": ""})
                self._delta(out, self.index, {"type": "text_delta", "text": delta["content"]})
            for call in delta.get("tool_calls") or []:
                position = call.get("index", 0)
                function = call.get("function") or {}
                if position not in self.tools:
                    self._block(out, f"tool{position}", {"type": "tool_use", "id": call.get("id") or "",
                                                         "name": function.get("name", ""), "input": {}})
                    self.tools[position] = self.index
                if function.get("arguments"):
                    self._delta(out, self.tools[position],
                                {"type": "input_json_delta", "partial_json": function["arguments"]})
            if choice.get("finish_reason"):
                self.finish = choice
        return b"".join(out)

    def end(self) -> bytes:
        out: list[bytes] = [] if self.started else [self.start()]
        self._close(out)
        reason, sequence = stop_reason(self.finish, self.stop_sequences)
        counts = usage(self.ctx.usage)
        out.append(frame("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": reason, "stop_sequence": sequence},
                                           "usage": counts}))
        out.append(frame("message_stop", {"type": "message_stop"}))
        return b"".join(out)


class RelayedEvents:
    """The pass-through's frames: already Anthropic's bytes; nothing to add at the end."""

    @staticmethod
    def feed(batch: list[bytes]) -> bytes:
        return b"".join(batch)

    @staticmethod
    def end() -> bytes:
        return b""


def error_frame(error: UpstreamError) -> bytes:
    return frame("error", error_object(error))


async def pump(ctx: RequestContext, respond: Responder, first, batches, frames) -> UpstreamError | None:
    """Write every batch as `frames` renders it, one send per upstream read; an upstream failure after the
    first byte becomes an `error` event (its status and code recorded for the ledger). Returns that failure."""
    failure = None
    try:
        batch = first
        while batch is not None:
            data = frames.feed(batch)
            if data:
                await respond.sse(data)
            batch = await anext(batches, None)
        tail = frames.end()
    except UpstreamError as error:
        failure = error
        respond.status = error.status
        ctx.error_code = error.code or error.type
        tail = error_frame(error)
    await respond.sse(tail, last=True)
    return failure
