"""The /v1 stream relay (`apps/gateway/sse.py`) with the ASGI `send` it writes to: what leaves, in what order, and
when. Streams end to end through a real server and upstream are in test_streaming.py and the hardening tests."""

from __future__ import annotations

import asyncio

from apps.gateway.context import Attempt, RequestContext
from apps.gateway.health_cache import HealthCache
from apps.gateway.health_store_memory import LocalHealthStore
from apps.gateway.http import Responder
from apps.gateway.sse import relay


def chunk(text: str, finish: str | None = None) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


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
