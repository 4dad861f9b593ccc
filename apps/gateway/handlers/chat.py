"""POST /v1/chat/completions — JSON and SSE."""

from __future__ import annotations

import orjson

from .. import pipeline, request_validation, stream_publish
from ..costs import cost_of
from ..http import header
from ..runtime import GatewayRuntime
from ..sse import relay
from . import Call, identified, served


async def chat_completions(rt: GatewayRuntime, call: Call) -> None:
    scope, ctx = call.scope, call.ctx
    snapshot, body = await identified(rt, call, request_validation.validate_chat)
    ctx.body = body
    pipeline.labels_from_metadata(ctx, body, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    body, ordered = await pipeline.prepare_chat(rt, ctx, snapshot, body)
    sink = stream_publish.sink_for(ctx, scope)
    if sink is None:
        return await _answer(rt, call, body, ordered, None)
    return await _published(rt, call, body, ordered, sink)


async def _answer(rt: GatewayRuntime, call: Call, body: dict, ordered, sink) -> None:
    ctx, respond = call.ctx, call.respond
    if body.get("stream") is not True:
        result = await pipeline.chat(rt, ctx, body, ordered)
        if sink is not None:
            message = (result.get("choices") or [{}])[0].get("message") or {}
            sink.chunk({"choices": [{"index": 0, "delta": {"content": message.get("content") or ""}}]})
        served(respond, ctx)
        return await respond.json(200, orjson.dumps(result))
    batches, first = await pipeline.open_chat_stream(rt, ctx, body, ordered, relay=sink is None)
    served(respond, ctx)
    include_usage = pipeline.wants_stream_usage(body)
    label = ctx.chosen.provider.name or ctx.chosen.provider.slug
    await relay(ctx, respond, call.receive, first, batches, include_usage=include_usage, label=label, sink=sink)
    return None


async def _published(rt: GatewayRuntime, call: Call, body: dict, ordered, sink) -> None:
    """The same answer, its chunks (or its one message) also handed to the `llmStream` publisher."""
    ctx = call.ctx
    error = None
    try:
        return await _answer(rt, call, body, ordered, sink)
    except Exception as exc:
        error = {"code": getattr(exc, "code", None) or "error", "message": getattr(exc, "message", "failed")}
        raise
    finally:
        usage = ctx.usage
        if error is None and ctx.error_code:
            error = {"code": ctx.error_code, "message": "The upstream stream failed."}
        sink.finish(usage=usage, cost=cost_of(ctx.chosen.model, usage) if ctx.chosen and usage else None,
                    error=error)
