"""POST /v1/messages (JSON and SSE) and /v1/messages/count_tokens — Anthropic's Messages API, run through the same
pipeline as /v1/chat/completions (routing, failover, rate limits, cost rules, budgets, the ledger) to any
provider. See `anthropic_ingress`."""

from __future__ import annotations

import orjson
from django.conf import settings

from apps.core.errors import InvalidRequest, ModelNotFound, UpstreamError
from apps.providers.adapters import registry
from apps.providers.adapters.base import Target

from .. import pipeline, request_validation
from ..admission.authentication import authenticate
from ..anthropic_ingress import events, passthrough, requests, responses
from ..http import header, read_json
from ..planning import candidates_for, routing_options
from ..prompt_tokens import LazyPromptTokens, estimate_prompt_tokens
from ..runtime import GatewayRuntime
from ..sse import relay
from . import Call, served

COUNT_TOKENS_TIMEOUT_SECONDS = 10.0


def _chat_body(original: dict) -> dict:
    """The OpenAI body, held to the chat endpoint's limits (nesting, model name). `stop` is left out of that
    check: Anthropic allows more than OpenAI's four stop sequences, and an upstream that cannot take them says so."""
    chat = requests.to_chat(original)
    request_validation.validate_chat({**chat, "stop": None})
    request_validation._check_depth(original)  # the pass-through sends fields the chat body lacks
    return chat


async def messages(rt: GatewayRuntime, call: Call) -> None:
    scope, respond, snapshot, ctx = call.scope, call.respond, call.snapshot, call.ctx
    ctx.tenant_id, ctx.key = authenticate(scope, snapshot)
    original = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES, requests.validate)
    body = ctx.body = _chat_body(original)
    pipeline.labels_from_metadata(ctx, {}, workflow_id=header(scope, b"x-cb-workflow-id"),
                                  agent_id=header(scope, b"x-cb-agent-id"))
    body, ordered = await pipeline.prepare_chat(rt, ctx, snapshot, body)
    stream = body.get("stream") is True
    if passthrough.eligible(ordered):
        if not stream:
            payload = await passthrough.send(rt, ctx, scope, original, ordered)
            served(respond, ctx)
            return await respond.json(200, payload)
        batches, first = await passthrough.open_stream(rt, ctx, scope, original, ordered)
        served(respond, ctx)
        return await relay(ctx, respond, call.receive, first, batches,
                           pump=lambda: events.pump(ctx, respond, first, batches, events.RelayedEvents))
    if only_anthropic := requests.untranslatable(original):
        raise InvalidRequest(f"{', '.join(only_anthropic)}: only Anthropic models take these, and "
                             f"{original['model']!r} is served by another provider.")
    stops = original.get("stop_sequences") or []
    if not stream:
        result = await pipeline.chat(rt, ctx, body, ordered)
        served(respond, ctx)
        answer = responses.message(result, request_id=ctx.request_id, stop_sequences=stops)
        return await respond.json(200, orjson.dumps(answer))
    batches, first = await pipeline.open_chat_stream(rt, ctx, body, ordered)
    served(respond, ctx)
    model = ctx.chosen.model
    frames = events.ChunkEvents(ctx, message_id=responses.message_id(ctx.request_id),
                                model=model.upstream_name or model.model_id, stop_sequences=stops,
                                input_tokens=LazyPromptTokens(body)(model))
    return await relay(ctx, respond, call.receive, first, batches,
                       pump=lambda: events.pump(ctx, respond, first, batches, frames))


async def count_tokens(rt: GatewayRuntime, call: Call) -> None:
    """`{"input_tokens": n}` for the model's first candidate: Anthropic's own count when that candidate is an
    Anthropic provider with a key (`x-cb-token-count: upstream`), else — or when that upstream cannot count
    (unreachable, no such endpoint) — the gateway's prompt-token counter (`x-cb-token-count: estimated`:
    exact for OpenAI-family models, calibrated for others). Not metered, not in the ledger."""
    scope, respond, snapshot = call.scope, call.respond, call.snapshot
    tenant_id, _ = authenticate(scope, snapshot)
    original = await read_json(scope, call.receive, settings.MAX_REQUEST_BODY_BYTES,
                               lambda body: requests.validate(body, count_tokens=True))
    body, options = routing_options(snapshot, tenant_id, _chat_body(original))
    candidates, _ = candidates_for(snapshot, tenant_id, options, mode="chat")
    if not candidates:
        raise ModelNotFound(f"No deployment serves the model {original['model']!r}.", param="model")
    first = candidates[0]
    respond.add_header("x-cb-provider", first.provider.slug)
    respond.add_header("x-cb-model", first.model.model_id)
    secret = next((s for _, s in first.provider.key_order() if s), None)
    if first.provider.type == passthrough.ANTHROPIC and secret:
        target = Target(first.provider.slug, first.provider.type, first.provider.base_url, secret,
                        first.model.upstream_name, first.provider.options)
        try:
            payload = await rt.upstream.fetch(
                registry.get(passthrough.ANTHROPIC), passthrough.request(scope, original, target, path="/count_tokens"),
                timeout=COUNT_TOKENS_TIMEOUT_SECONDS, target=target, secrets=pipeline.provider_secrets(first))
        except UpstreamError as error:
            if not error.retryable:  # the upstream found the request itself wrong: so would the next try
                raise
        else:
            respond.add_header("x-cb-token-count", "upstream")
            return await respond.json(200, payload)
    respond.add_header("x-cb-token-count", "estimated")
    tokens = estimate_prompt_tokens(body, first.model)
    return await respond.json(200, orjson.dumps({"input_tokens": tokens}))
