"""The chat completion pipeline, shared by `/v1/chat/completions` and the in-process completion API:
rate limits → routing options → cost rules → candidates → plan → budget reservation → attempts, and
`finalize` (ledger record, settlement of every admission step) when the request ends, however it ends."""

from __future__ import annotations

import time

import orjson
from django.conf import settings

from apps.core.errors import InvalidRequest
from apps.providers.adapters import registry
from apps.providers.adapters.base import ChunkFactory, Target
from apps.providers.route_options import request_needs

from . import metrics, middle_out
from .attempts import attempt
from .context import RequestContext
from .planning import candidates_for, plan, routing_options
from .redaction import scrub
from .resolve import Candidate
from .runtime import GatewayRuntime
from .snapshot import Snapshot

# Fields of our own (and OpenRouter's) that must not reach an upstream.
GATEWAY_FIELDS = ("circuit_breaker", "models", "route", "provider", "transforms", "plugins", "usage")


def upstream_body(body: dict, target: Target) -> dict:
    out = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
    out["model"] = target.model
    return out


def provider_secrets(candidate: Candidate) -> list[str]:
    """Every configured credential of the candidate's provider: scrubbed from its errors, whichever was sent."""
    return [secret for _, secret in candidate.provider.keys if secret]


def labels_from_metadata(ctx: RequestContext, body: dict, *, workflow_id: str | None = None,
                         agent_id: str | None = None) -> None:
    """Workflow and agent ids for the ledger: given by the caller, else the request's metadata."""
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    ctx.workflow_id = str(workflow_id or metadata.get("workflow_id") or "")[:64]
    ctx.agent_id = str(agent_id or metadata.get("agent_id") or "")[:64]


async def prepare_chat(rt: GatewayRuntime, ctx: RequestContext, snapshot: Snapshot,
                       body: dict) -> tuple[dict, list[Candidate]]:
    """Admit the request and plan it: the body to send and the candidates in the order to try."""
    await rt.rate_limits.admit(ctx, snapshot, body)
    if body.get("stream") is True and not settings.OPENAI_ENABLE_STREAMING:
        raise InvalidRequest("Streaming is disabled on this server.", param="stream", code="streaming_disabled")
    reasoning = body.get("reasoning")
    ctx.hide_reasoning = isinstance(reasoning, dict) and reasoning.get("exclude") is True
    if (ctx.key is not None and ctx.key.request_logging) or (
            (tenant := snapshot.tenants.get(ctx.tenant_id)) is not None and tenant.request_logging):
        ctx.request_log = body  # the request as the client sent it (request logs: the tenant or key opted in)
    body, options = routing_options(snapshot, ctx.tenant_id, body)
    options = await rt.cost_rules.admit(ctx, snapshot, body, options)
    candidates, tiers = candidates_for(snapshot, ctx.tenant_id, options, mode="chat")
    if body.get("transforms"):
        body = ctx.body = middle_out.fit(body, candidates, request_needs(body).max_output or 0)
    ordered = await plan(ctx, body, options, candidates, tiers=tiers, snapshot=snapshot)

    async def replan(body: dict, cheaper) -> list[Candidate]:
        found, found_tiers = candidates_for(snapshot, ctx.tenant_id, cheaper, mode="chat")
        return await plan(ctx, body, cheaper, found, tiers=[0] * len(found_tiers), snapshot=snapshot)

    body, ordered = await rt.budgets.admit(ctx, snapshot, body, options, ordered, replan=replan)
    await begin_inflight(rt, ctx, body, ordered)
    return body, ordered


async def begin_inflight(rt: GatewayRuntime, ctx: RequestContext, body: dict, ordered: list[Candidate]) -> None:
    """Right before the first upstream attempt: a durable in-flight marker, so a request whose process is killed
    mid-flight is still billed, at its worst case (the budget's reservation, else the first candidate's prompt
    (quick count) at list price plus the output cap), by `billing.reconcile_inflight`. `finalize`'s ledger
    append retires it. Nothing to do without Redis.

    The upstream request leaves only once the marker is written to Redis's socket (the loop turn's one write,
    shared with the other requests of the turn), but the marker's acknowledgement is awaited in `finalize`: its
    round trip overlaps the upstream's instead of preceding it. Once in the kernel's buffer the marker reaches
    Redis even if this process is killed next; what is lost is only the case of Redis refusing it *and* this
    process dying before the spool's fsync. When the connection fails first, the marker (then spooled) is
    awaited here."""
    if rt.ledger.redis is None or not ordered:
        return
    options, key = ctx.options, ctx.key
    prompt = ctx.prompt_counter(body).encoded("quick")
    reservation = ctx.reservation
    if reservation is not None:
        estimate = reservation.amount
    else:
        # The quick token count (no tokenizer on the hot path: that is the budget step's job when there is one).
        model = ordered[0].model
        cap = body.get("max_completion_tokens") or body.get("max_tokens") or model.max_output_tokens or 0
        estimate = prompt * model.input_price + cap * model.output_price
    user, project = ctx.labels()
    marker = rt.ledger.begin(
        ctx.request_id, tenant_id=ctx.tenant_id, api_key_id=key.id if key else None, endpoint=ctx.endpoint,
        model_requested=(options.model if options else body.get("model")) or "",
        model_served=ordered[0].model.model_id, provider=ordered[0].provider.slug, estimated_cost=estimate,
        prompt_tokens=prompt, streamed=body.get("stream") is True, user_label=user, project_label=project,
        workflow_id=ctx.workflow_id, agent_id=ctx.agent_id, created_at=ctx.wall_started)
    if await rt.ledger.written():
        ctx.marker = marker
    else:
        await marker


async def chat(rt: GatewayRuntime, ctx: RequestContext, body: dict, ordered: list[Candidate]) -> dict:
    """One non-streamed completion, failing over across `ordered`; OpenRouter's `provider` field added."""
    async def call(candidate: Candidate, target: Target, timeout: float) -> dict:
        adapter = registry.get(candidate.provider.type)
        return await rt.upstream.chat(adapter, target, upstream_body(body, target), timeout=timeout,
                                      secrets=provider_secrets(candidate))

    result = ctx.result = await attempt(ctx, ordered, call)
    usage = ctx.usage = result.get("usage")
    if isinstance(usage, dict):
        usage["cost"] = ctx.usage_cost(usage)  # OpenRouter's usage.cost, USD
    if ctx.hide_reasoning:
        for choice in result.get("choices") or ():
            (choice.get("message") or {}).pop("reasoning", None)
    result["provider"] = ctx.chosen.provider.name or ctx.chosen.provider.slug  # as OpenRouter answers
    return result


async def open_chat_stream(rt: GatewayRuntime, ctx: RequestContext, body: dict, ordered: list[Candidate], *,
                           open_batches=None, relay: bool = False):
    """The first batch of chunks and the iterator of the rest. Fail over happens only before the first byte
    reaches the client, so an attempt includes the first chunk. The chosen deployment's outcome is left for
    the caller to record (`ctx.ticket`) when the stream ends. `open_batches(candidate, target, timeout)`
    replaces the adapter's translated stream (the Anthropic ingress relays Anthropic's own events). `relay`:
    batches may hold undecoded chunk JSON (bytes) for `sse.pump_events`."""
    async def call(candidate: Candidate, target: Target, timeout: float):
        if open_batches is not None:
            batches = open_batches(candidate, target, timeout)
        else:
            batches = rt.upstream.chat_stream_batches(registry.get(candidate.provider.type), target,
                                                      upstream_body(body, target), ChunkFactory(target.model),
                                                      timeout=timeout, secrets=provider_secrets(candidate),
                                                      relay=relay)
        try:
            first = await anext(batches)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await batches.aclose()
            raise
        return batches, first

    batches, first = await attempt(ctx, ordered, call, record_success=False)
    ctx.ttft_s = ctx.attempts[-1].ms / 1000
    ctx.streamed = True
    return batches, first


def wants_stream_usage(body: dict) -> bool:
    """The final usage chunk: OpenAI's `stream_options.include_usage`, or OpenRouter's `usage.include`."""
    options, usage = body.get("stream_options"), body.get("usage")
    return bool((isinstance(options, dict) and options.get("include_usage"))
                or (isinstance(usage, dict) and usage.get("include") is True))


def note_chunk(ctx: RequestContext, chunk: dict) -> bool:
    """Track a relayed chunk (usage, text for counting when usage is missing). False for a usage-only chunk."""
    choices = chunk.get("choices")
    if chunk.get("usage") and not choices:
        usage = ctx.usage = chunk["usage"]
        usage["cost"] = ctx.usage_cost(usage)  # OpenRouter's usage.cost, USD
        return False
    if choices:
        delta = choices[0].get("delta") or {}
        content = delta.get("content")
        if content:
            ctx.streamed_text.append(content)
        if ctx.hide_reasoning and "reasoning" in delta:
            del delta["reasoning"]
    return True


async def finalize(rt: GatewayRuntime, ctx: RequestContext, status: int) -> None:
    """Right before the last bytes: the ledger record (durable once in Redis) and every admission step settled."""
    if ctx.finalized:
        return
    ctx.finalized = True
    usage, estimated = ctx.final_usage()
    ctx.usage = usage
    cost = ctx.cost_for(usage)
    entry = ctx.usage_entry(status, usage, estimated, cost)
    if ctx.request_log is not None:
        entry["log"] = request_log(ctx)
    if ctx.marker is not None:  # in Redis or the spool before the record that retires it is sent
        await ctx.marker
    await rt.ledger.append(entry)
    await rt.budgets.settle(ctx, usage)
    await rt.cost_rules.settle(ctx, cost)
    await rt.rate_limits.settle(ctx, usage)


def request_log(ctx: RequestContext) -> str:
    """The request and its answer (the JSON answer, or what a stream relayed), as JSON text scrubbed of the
    provider's credentials; billing's ingester redacts, truncates and stores it (apps/billing/request_logs.py)."""
    if ctx.result is not None:
        response = ctx.result
    elif ctx.streamed:
        response = {"streamed": True, "content": ctx.streamed_content(), "usage": ctx.usage}
    else:
        response = {"error": ctx.error_code}
    text = orjson.dumps({"request": ctx.request_log, "response": response}, default=str).decode()
    return scrub(text, provider_secrets(ctx.chosen)) if ctx.chosen is not None else text


def account(ctx: RequestContext, status: int, error_code: str | None) -> None:
    """Metrics and the route log, after the response."""
    chosen = ctx.chosen
    metrics.record_request(
        endpoint=ctx.endpoint, model=chosen.model.model_id if chosen else None,
        provider=chosen.provider.slug if chosen else None, status=status,
        duration_s=time.perf_counter() - ctx.started, ttft_s=ctx.ttft_s, usage=ctx.usage,
        cost=ctx.cost_for(ctx.usage) if chosen and ctx.usage else None, error_type=error_code)
    ctx.log(status=status, error=error_code)
