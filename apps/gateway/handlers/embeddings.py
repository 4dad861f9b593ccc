"""POST /v1/embeddings."""

from __future__ import annotations

import orjson
from django.conf import settings

from apps.providers.adapters import registry
from apps.providers.adapters.base import Target

from .. import pipeline, request_validation
from ..admission.authentication import authenticate
from ..attempts import attempt
from ..http import header, read_json
from ..resolve import Candidate
from ..runtime import GatewayRuntime
from . import Call, served
from .plain import plain_candidates


async def embeddings(rt: GatewayRuntime, call: Call) -> None:
    scope, respond, snapshot, ctx = call.scope, call.respond, call.snapshot, call.ctx
    ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    body = ctx.body = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES,
                                      request_validation.validate_embeddings)
    pipeline.labels_from_metadata(ctx, body, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    await rt.rate_limits.admit(ctx, snapshot, body)
    candidates = plain_candidates(snapshot, ctx.tenant_id, body, mode="embedding", capability="supports_embeddings")
    await pipeline.begin_inflight(rt, ctx, body, candidates)  # billed even if this process dies mid-request

    async def call_upstream(candidate: Candidate, target: Target, timeout: float) -> dict:
        return await rt.upstream.embeddings(registry.get(candidate.provider.type), target,
                                            pipeline.upstream_body(body, target), timeout=timeout,
                                            secrets=pipeline.provider_secrets(candidate))

    result = await attempt(ctx, candidates, call_upstream)
    ctx.usage = result.get("usage")
    served(respond, ctx)
    return await respond.json(200, orjson.dumps(result))
