"""Relaying an upstream stream to a /v1 client as server-sent events, one send per upstream read, and noticing
when the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson

from apps.core.errors import UpstreamError
from apps.providers.adapters.openai import RelayableRun

from .context import RequestContext
from .http import SSE_DONE, ClientGone, Responder, sse_event
from .pipeline import note_chunk
from .upstream import LastBatch


async def relay(ctx: RequestContext, respond: Responder, receive, first, batches, *, include_usage: bool = False,
                label: str | None = None, pump=None, sink=None) -> None:
    """Relay until the upstream ends or the client leaves; the chosen deployment's outcome goes to the health
    cache (a client that left says nothing about the deployment: its ticket is released). `pump()` makes the
    coroutine that sends the events and returns the error that ended the stream early (default: `pump_events`,
    OpenAI's chat chunks)."""
    ticket, opened = ctx.ticket, time.perf_counter() - ctx.attempts[-1].ms / 1000
    if pump is None and type(first) is LastBatch:
        # The upstream has finished: nothing is left to wait for, so no task and no watcher for the client.
        try:
            await respond.start_sse()
            failure = await pump_events(ctx, respond, first, batches, include_usage=include_usage, label=label,
                                        sink=sink)
        except BaseException:
            await batches.aclose()
            raise
    else:
        if pump is None:
            pump = await _lead(ctx, respond, first, batches, include_usage=include_usage, label=label, sink=sink)
        else:
            pump = await _after_head(respond, pump())
        gone = asyncio.ensure_future(wait_disconnect(receive))
        done, _ = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        if pump not in done:
            # The client left: stop reading upstream, which closes that connection.
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # nobody is left to tell
                await pump
            await batches.aclose()
            await ctx.health.release(ticket)
            raise ClientGone
        gone.cancel()
        failure = pump.result()
    latency_ms = (time.perf_counter() - opened) * 1000
    if failure is None:
        await ctx.health.success(ticket, latency_ms=latency_ms, ttft_ms=ctx.ttft_s * 1000)
    else:
        await ctx.health.failure(ticket, latency_ms=latency_ms)


async def _lead(ctx: RequestContext, respond: Responder, first, batches, *, include_usage: bool,
                label: str | None, sink) -> asyncio.Task:
    """OpenAI's chat chunks: the first read's events are written here, in the same write as the head
    (apps/core/http_protocol.py holds a head until the next write), and a task pumps the rest — the first bytes do
    not wait a loop turn for that task to start (~70 µs of a c=1 stream's time to first byte, traced)."""
    encode = _Encoder(ctx, label, include_usage, sink)
    try:
        lead = encode.batch(first) if first is not None else b""
        await respond.start_sse()
        if lead:
            await respond.sse(lead)
    except BaseException:
        await batches.aclose()
        raise
    rest = () if first is not None else None  # an empty batch: the pump goes on with the next read
    return asyncio.ensure_future(pump_events(ctx, respond, rest, batches, include_usage=include_usage, encode=encode))


async def _after_head(respond: Responder, events) -> asyncio.Task:
    """Another protocol's pump (`relay(pump=)`): scheduled before the head is written, so its first events leave
    in the same write as the head."""
    head_sent = asyncio.get_running_loop().create_future()

    async def after_head():
        await head_sent
        return await events

    pump = asyncio.ensure_future(after_head())
    try:
        await respond.start_sse()
    except BaseException:
        pump.cancel()
        events.close()
        raise
    head_sent.set_result(None)
    return pump


async def wait_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def pump_events(ctx: RequestContext, respond: Responder, first, batches, *, include_usage: bool,
                      label: str | None = None, sink=None, encode: _Encoder | None = None) -> UpstreamError | None:
    """Relay batches of chunks, one send per upstream read; returns the error that ended the stream early."""
    failure = None
    encode = encode or _Encoder(ctx, label, include_usage, sink)
    try:
        batch = first
        while batch is not None:
            data = encode.batch(batch)
            if data:
                await respond.sse(data)
            batch = await anext(batches, None)
    except UpstreamError as error:
        failure = error
        # The 200 went out with the headers; the ledger and metrics must still say the stream failed, so the
        # status and error are known before the last bytes (the finalizer records them there).
        respond.status = error.status
        ctx.error_code = error.code or error.type
        await respond.sse(sse_event(error.as_openai()))
    await respond.sse(SSE_DONE, last=True)
    return failure


class _Encoder:
    """A relayed chunk's SSE event. A chunk may be undecoded JSON bytes (`OpenAIStream.relay`): it goes out with
    the provider field written in at the byte level and a null usage dropped (unless asked for), decoded only
    when reasoning must be hidden. A `RelayableRun` (a read's leading events, all such chunks) is rewritten whole
    the same way."""

    __slots__ = ("ctx", "hide_reasoning", "include_usage", "label", "sink", "suffix")

    def __init__(self, ctx: RequestContext, label: str | None, include_usage: bool, sink):
        self.ctx, self.label, self.include_usage, self.sink = ctx, label, include_usage, sink
        self.suffix = b',"provider":' + orjson.dumps(label) + b"}" if label is not None else b"}"
        self.hide_reasoning = ctx.hide_reasoning

    def batch(self, batch) -> bytes:
        """One upstream read's events."""
        events = []
        for item in batch:
            if type(item) is RelayableRun:
                events += self.run(item)
            else:
                event = self.one(item)
                if event is not None:
                    events.append(event)
        return b"".join(events)

    def _as_written(self, raw: bytes) -> bytes | None:
        """`raw` without its null usage (unless asked for), or None when it must be decoded: usage written some
        other way, or reasoning to hide."""
        if not self.include_usage and b'"usage"' in raw:
            raw = raw.replace(b',"usage":null', b"")
            if b'"usage"' in raw:
                return None
        return None if self.hide_reasoning and b'"reasoning"' in raw else raw

    def run(self, item: RelayableRun) -> list[bytes]:
        run = self._as_written(item)
        if run is not None:
            self.ctx.streamed_text.append(item)  # decoded only if it must be counted (a run, as read)
            return [run.replace(b"}\n\n", self.suffix + b"\n\n") if self.label is not None else run]
        # usage or reasoning written some other way: one by one
        events = (self.one(raw[6:]) for raw in item.split(b"\n\n")[:-1])
        return [event for event in events if event is not None]

    def one(self, item) -> bytes | None:
        """None when nothing is sent for the chunk."""
        chunk = item
        if type(item) is bytes:
            raw = self._as_written(item)
            if raw is not None:
                self.ctx.streamed_text.append(raw)  # its content is decoded only if it must be counted
                return b"data: " + raw[:-1] + self.suffix + b"\n\n"
            chunk = orjson.loads(item)
        if self.label is not None:
            chunk["provider"] = self.label
        if self.sink is not None:  # llmStream subscribers (stream_publish): queued, never waited for
            self.sink.chunk(chunk)
        if not note_chunk(self.ctx, chunk):
            return sse_event(chunk) if self.include_usage else None
        if self.include_usage or "usage" not in chunk:
            return sse_event(chunk)
        return sse_event({k: v for k, v in chunk.items() if k != "usage"})
