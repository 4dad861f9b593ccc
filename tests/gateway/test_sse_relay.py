"""The /v1 stream relay (`apps/gateway/sse.py`) with the ASGI `send` it writes to: what leaves, in what order, and
when. Streams end to end through a real server and upstream are in test_streaming.py and the hardening tests."""

from __future__ import annotations

import asyncio

import pytest

from apps.gateway.context import Attempt, RequestContext
from apps.gateway.health_cache import HealthCache
from apps.gateway.health_store_memory import LocalHealthStore
from apps.gateway.http import ClientGone, Responder
from apps.gateway.sse import relay
from apps.gateway.upstream import LastBatch


def chunk(text: str, finish: str | None = None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def relayed(first, rest, receive):
    """What `relay` sent for a stream whose first read is `first` and whose later reads `rest` yields."""
    async def main():
        log = []

        async def send(message):
            log.append(message)

        health = HealthCache(LocalHealthStore())
        ctx = RequestContext(health, "req_1", "chat")
        ctx.attempts.append(Attempt("d", "p", "m", "ok", 200, 1.0))
        ctx.ticket = await health.acquire("d")
        ctx.ttft_s = 0.001
        await relay(ctx, Responder(send, cors=False), receive, first, rest, label="P")
        return log, ctx, health

    return asyncio.run(main())


def test_the_first_reads_events_leave_with_the_head_before_the_loop_turns():
    """The first read is written by the relay itself, right after the head (which the server holds for it), so
    a stream's first bytes do not wait a loop turn for the pump task; later reads follow in order."""
    async def main():
        log = []

        async def send(message):
            if message["type"] == "http.response.start":
                log.append(("head", message["status"]))
            else:
                log.append(("body", message["body"], message.get("more_body", False)))

        async def receive():
            await asyncio.Event().wait()  # the client stays

        async def rest():
            yield [chunk(" world", "stop")]

        health = HealthCache(LocalHealthStore())
        ctx = RequestContext(health, "req_1", "chat")
        ctx.attempts.append(Attempt("d", "p", "m", "ok", 200, 1.0))
        ctx.ticket = await health.acquire("d")
        ctx.ttft_s = 0.001
        respond = Responder(send, cors=False)
        asyncio.get_running_loop().call_soon(log.append, ("loop turn",))
        await relay(ctx, respond, receive, [chunk("hello")], rest(), label="P")
        return log, ctx

    log, ctx = asyncio.run(main())
    assert log[0] == ("head", 200)
    assert log[1][0] == "body" and log[1][1].startswith(b'data: {"id":"c1"') and b'"hello"' in log[1][1]
    assert b'"provider":"P"' in log[1][1]
    assert log[2] == ("loop turn",)
    assert b'" world"' in log[3][1] and log[3][2] is True
    assert log[-1] == ("body", b"data: [DONE]\n\n", False)
    assert ctx.streamed_content() == "hello world"


def test_a_stream_whose_upstream_has_finished_is_relayed_without_watching_the_client():
    """When the first read is the upstream's last (`LastBatch`: the answer is complete), nothing is left to wait
    for: the events, [DONE] and the health record follow at once, without a disconnect watcher."""
    asked = []

    async def receive():  # what the disconnect watcher would call
        asked.append(True)
        await asyncio.Event().wait()

    async def nothing_more():
        return
        yield

    log, ctx, health = relayed(LastBatch([chunk("hello"), chunk(" world", "stop")]), nothing_more(), receive)
    assert [m["type"] for m in log] == ["http.response.start", "http.response.body", "http.response.body"]
    assert b'"hello"' in log[1]["body"] and b'" world"' in log[1]["body"] and b'"provider":"P"' in log[1]["body"]
    assert log[2] == {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False}
    assert ctx.streamed_content() == "hello world"
    assert health.inflight["d"] == 0  # the ticket went back with the success
    assert asked == []


def test_a_client_that_leaves_mid_stream_stops_the_relay():
    async def gone():
        return {"type": "http.disconnect"}

    async def stalled():
        await asyncio.Event().wait()
        yield [chunk("never")]

    with pytest.raises(ClientGone):
        relayed([chunk("hello")], stalled(), gone)
