"""POST /v1/chat/completions — JSON and SSE."""

from __future__ import annotations

import orjson
from django.conf import settings

from .. import pipeline, request_validation
from ..admission.authentication import authenticate
from ..http import header, read_json
from ..runtime import GatewayRuntime
from ..sse import relay
from . import Call, served


async def chat_completions(rt: GatewayRuntime, call: Call) -> None:
    scope, respond, snapshot, ctx = call.scope, call.respond, call.snapshot, call.ctx
    ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    body = ctx.body = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES,
                                      request_validation.validate_chat)
    pipeline.labels_from_metadata(ctx, body, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    body, ordered = await pipeline.prepare_chat(rt, ctx, snapshot, body)
    if body.get("stream") is not True:
        result = await pipeline.chat(rt, ctx, body, ordered)
        served(respond, ctx)
        return await respond.json(200, orjson.dumps(result))
    batches, first = await pipeline.open_chat_stream(rt, ctx, body, ordered)
    served(respond, ctx)
    include_usage = pipeline.wants_stream_usage(body)
    label = ctx.chosen.provider.name or ctx.chosen.provider.slug
    await relay(ctx, respond, call.receive, first, batches, include_usage=include_usage, label=label)
    return None
