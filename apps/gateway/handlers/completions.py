"""POST /v1/completions — the legacy text completions endpoint, JSON and SSE."""

from __future__ import annotations

from django.conf import settings

from apps.core.errors import InvalidRequest
from apps.providers.adapters import registry
from apps.providers.adapters.base import ChunkFactory, Target

from .. import pipeline, request_validation
from ..admission.authentication import authenticate
from ..attempts import attempt
from ..http import header, read_json
from ..resolve import Candidate
from ..runtime import GatewayRuntime
from ..sse import pump_events
from . import Call, served
from .plain import plain_candidates


async def completions(rt: GatewayRuntime, call: Call) -> None:
    scope, respond, snapshot, ctx = call.scope, call.respond, call.snapshot, call.ctx
    ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    body = ctx.body = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES,
                                      request_validation.validate_completions)
    pipeline.labels_from_metadata(ctx, body, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    await rt.rate_limits.admit(ctx, snapshot, body)
    stream = body.get("stream") is True
    if stream and not settings.OPENAI_ENABLE_STREAMING:
        raise InvalidRequest("Streaming is disabled on this server.", param="stream", code="streaming_disabled")
    candidates = plain_candidates(snapshot, ctx.tenant_id, body, mode="completion",
                                  capability="supports_completions")
    await pipeline.begin_inflight(rt, ctx, body, candidates)  # billed even if this process dies mid-request

    async def call_upstream(candidate: Candidate, target: Target, timeout: float):
        adapter = registry.get(candidate.provider.type)
        request = adapter.completions_request(pipeline.upstream_body(body, target), target, stream=stream)
        secrets = pipeline.provider_secrets(candidate)
        if not stream:
            return await rt.upstream.fetch(adapter, request, timeout=timeout, target=target, secrets=secrets)
        translator = adapter.completions_stream(target, ChunkFactory(target.model))
        batches = rt.upstream.stream_request_batches(adapter, request, translator, timeout=timeout, target=target,
                                                     secrets=secrets)
        try:
            return batches, await anext(batches, None)
        except BaseException:
            await batches.aclose()
            raise

    result = await attempt(ctx, candidates, call_upstream)
    served(respond, ctx)
    if not stream:
        return await respond.json(200, result)
    batches, first = result
    await respond.start_sse()
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    await pump_events(ctx, respond, first, batches, include_usage=include_usage)
    return None
