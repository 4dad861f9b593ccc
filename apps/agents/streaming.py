"""One streamed model call of an agent, consumed on the calling (sync) thread.

The stream itself runs on the process's event loop (`loop.py`); its chunks cross to the task's thread through a
queue, where content is coalesced into events (at most one `agent_content` per `FLUSH_SECONDS`), tool-call
deltas are assembled, and between chunks the deadline and the cancel flag are checked. Cancelling the loop's
future closes the stream, which stops the upstream and bills what was relayed (the gateway's rule)."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from apps.gateway import completion_api

from . import loop

FLUSH_SECONDS = 0.1  # coalescing window of content events, and how often the cancel flag is read
_DONE = object()


class RunCancelled(Exception):
    pass


class RunTimedOut(Exception):
    pass


@dataclass
class StepResult:
    text: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict | None = None
    cost: Decimal = Decimal(0)
    model: str = ""
    provider: str = ""


async def _consume(tenant_id: int, request: dict, kwargs: dict, out: queue.SimpleQueue) -> None:
    chunks = completion_api.stream(tenant_id, request, **kwargs)
    try:
        async for chunk in chunks:
            out.put(chunk)
        out.put(_DONE)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
        out.put(exc)
    finally:
        await chunks.aclose()


def _cost(value) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def stream_step(tenant_id: int, request: dict, kwargs: dict, *, deadline: float, cancelled: Callable[[], bool],
                on_content: Callable[[str], None], on_thinking: Callable[[str], None]) -> StepResult:
    """Stream one completion to its end. Raises the gateway's ApiError, RunCancelled or RunTimedOut."""
    out: queue.SimpleQueue = queue.SimpleQueue()
    future = loop.submit(_consume(tenant_id, request, kwargs, out))
    result = StepResult()
    text: list[str] = []
    pending: list[str] = []
    thinking: list[str] = []
    calls: dict[int, dict] = {}
    last_flush = last_check = time.monotonic()

    def flush():
        nonlocal last_flush
        if thinking:
            on_thinking("".join(thinking))
            thinking.clear()
        if pending:
            on_content("".join(pending))
            pending.clear()
        last_flush = time.monotonic()

    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise RunTimedOut()
            if now - last_check >= FLUSH_SECONDS:
                last_check = now
                if cancelled():
                    raise RunCancelled()
            try:
                item = out.get(timeout=max(0.001, min(FLUSH_SECONDS, deadline - now)))
            except queue.Empty:
                item = None
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                _take(item, result, text, pending, thinking, calls=calls)
            if (pending or thinking) and time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
        flush()
    finally:
        if not future.done():
            future.cancel()
    result.text = "".join(text)
    result.tool_calls = [calls[i] for i in sorted(calls)]
    return result


def _take(chunk: dict, result: StepResult, text, pending, thinking, *, calls) -> None:
    if chunk.get("usage"):
        result.usage = chunk["usage"]
        result.cost = _cost(chunk["usage"].get("cost"))
    result.model = chunk.get("model") or result.model
    result.provider = chunk.get("provider") or result.provider
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if content := delta.get("content"):
            text.append(content)
            pending.append(content)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            thinking.append(reasoning)
        for piece in delta.get("tool_calls") or []:
            call = calls.setdefault(piece.get("index", 0), {"id": "", "type": "function",
                                                             "function": {"name": "", "arguments": ""}})
            if piece.get("id"):
                call["id"] = piece["id"]
            function = piece.get("function") or {}
            if function.get("name"):
                call["function"]["name"] += function["name"]
            if function.get("arguments"):
                call["function"]["arguments"] += function["arguments"]
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]
