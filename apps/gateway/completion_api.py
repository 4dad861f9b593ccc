"""The in-process completion API: how agents, the WebSocket stream, GraphQL and MCP get a completion.

`complete()` and `stream()` run the exact pipeline of `/v1/chat/completions` — validation, resolution, routing,
failover, rate limits, cost rules, budgets and the usage ledger — for a tenant the caller has already
authorised (optionally through one of its keys, whose labels and limits then apply). Nothing inside the
platform calls `/v1` over HTTP.

Errors are raised as `apps.core.errors.ApiError` (the same status, type and code /v1 would answer); a stream
that fails after its first chunk raises the upstream's error from the iterator, after the failure is recorded.

The runtime (snapshot, pooled clients) belongs to an event loop: in the web process the /v1 runtime is shared;
a caller on another loop gets one of its own, started on first use — keep such a loop alive (one per worker
process), since each runtime loads the configuration once.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from apps.core import loop_thread
from apps.core.errors import ApiError, UpstreamError

from . import pipeline, request_validation
from .admission.authentication import authenticate_tenant
from .app import gateway_app
from .context import RequestContext
from .costs import cost_of
from .runtime import GatewayRuntime

_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GatewayRuntime] = weakref.WeakKeyDictionary()


def _runtime() -> GatewayRuntime:
    loop = asyncio.get_running_loop()
    shared = gateway_app.runtime
    if shared.loop is loop:
        return shared
    runtime = _runtimes.get(loop)
    if runtime is None:
        if shared.loop is None:
            return shared
        runtime = _runtimes[loop] = GatewayRuntime(freeze=False)
    return runtime


def run_sync(make: Callable[[], Awaitable], *, timeout: float | None):
    """For sync callers (Django views, GraphQL resolvers): `await make()` on the loop that owns the shared
    runtime when a server runs one, else on this process's background loop with a runtime of its own (which
    never takes the shared one, so a server loop starting later still gets it). Raises TimeoutError."""
    shared = gateway_app.runtime.loop
    if shared is not None and shared.is_running():
        return loop_thread.run(make(), timeout=timeout, loop=shared)

    async def private():
        loop = asyncio.get_running_loop()
        if loop not in _runtimes and gateway_app.runtime.loop is not loop:
            _runtimes[loop] = GatewayRuntime(freeze=False)
        return await make()

    return loop_thread.run(private(), timeout=timeout)


async def close() -> None:
    """Shut down the runtime of the running loop (for callers that own their loop, before they close it)."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.pop(loop, None)
    if runtime is None and gateway_app.runtime.loop is loop:
        runtime = gateway_app.runtime
    if runtime is not None:
        await runtime.shutdown()
        runtime.loop = None


def _priced(ctx: RequestContext, usage: dict | None) -> None:
    """In-process callers (agents) get the cost the ledger records, as OpenRouter's `usage.cost` (a decimal
    string: exact). /v1 answers are not changed."""
    if isinstance(usage, dict) and ctx.chosen is not None:
        usage["cost"] = str(cost_of(ctx.chosen.model, usage))


def _tenant_id(tenant) -> int:
    return tenant if isinstance(tenant, int) else tenant.id


def _request(request: dict, *, user: str | None, project: str | None, routing: dict | None) -> dict:
    body = dict(request)
    options = {**(body.get("circuit_breaker") or {}), **(routing or {})}
    if user or project:
        tracking = dict(options.get("budget_tracking") or {})
        if user:
            tracking["user_id"] = user
        if project:
            tracking["project_id"] = project
        options["budget_tracking"] = tracking
    if options:
        body["circuit_breaker"] = options
    return body


async def _prepare(rt: GatewayRuntime, tenant, request: dict, *, api_key_id, user, project, workflow_id, agent_id,
                   routing, request_id, stream: bool):
    snapshot = await rt.ready()
    ctx = RequestContext(rt.health, request_id or "req_" + os.urandom(16).hex(), "chat.completions")
    ctx.tenant_id = _tenant_id(tenant)
    ctx.key = authenticate_tenant(snapshot, ctx.tenant_id, api_key_id)
    body = {**_request(request, user=user, project=project, routing=routing), "stream": stream}
    if not stream:
        body.pop("stream_options", None)
    body = ctx.body = request_validation.validate_chat(body)
    pipeline.labels_from_metadata(ctx, body, workflow_id=workflow_id, agent_id=agent_id)
    body, ordered = await pipeline.prepare_chat(rt, ctx, snapshot, body)
    return ctx, body, ordered


async def complete(tenant, request: dict, *, api_key_id: int | None = None, user: str | None = None,
                   project: str | None = None, workflow_id: str | None = None, agent_id: str | None = None,
                   routing: dict | None = None, request_id: str | None = None, route_info: dict | None = None) -> dict:
    """One chat completion (an OpenAI `chat.completion` dict) for `tenant` (a Tenant or its id).
    `routing` takes the `circuit_breaker` options of /v1; `user` and `project` label the ledger and budgets.
    `route_info`, when given, is filled with how it was routed (see `_route_info`), error or not."""
    rt = _runtime()
    ctx = None
    status = 500
    try:
        ctx, body, ordered = await _prepare(rt, tenant, request, api_key_id=api_key_id, user=user, project=project,
                                            workflow_id=workflow_id, agent_id=agent_id, routing=routing,
                                            request_id=request_id, stream=False)
        result = await pipeline.chat(rt, ctx, body, ordered)
        status = 200
        _priced(ctx, result.get("usage"))
        return result
    except ApiError as error:
        status = error.status
        if ctx is not None:
            ctx.error_code = error.code or error.type
        raise
    finally:
        if ctx is not None:
            await pipeline.finalize(rt, ctx, status)
            pipeline.account(ctx, status, ctx.error_code)
            if route_info is not None:
                route_info.update(_route_info(ctx))


def _route_info(ctx: RequestContext) -> dict:
    """The request id, strategy, every attempt (provider, model, outcome, status, ms), the cost and our overhead:
    what /v1 answers in its x-cb-* headers, for callers without headers."""
    chosen = ctx.chosen
    return {"request_id": ctx.request_id, "strategy": ctx.strategy,
            "provider": (chosen.provider.name or chosen.provider.slug) if chosen else None,
            "model": chosen.model.model_id if chosen else None,
            "attempts": [{"provider": a.provider, "model": a.model, "outcome": a.outcome, "status": a.status,
                          "latency_ms": round(a.ms, 3)} for a in ctx.attempts],
            "cost": float(cost_of(chosen.model, ctx.usage)) if chosen and ctx.usage else None,
            "overhead_ms": round(ctx.overhead_ms(), 3)}


async def stream(tenant, request: dict, *, api_key_id: int | None = None, user: str | None = None,
                 project: str | None = None, workflow_id: str | None = None, agent_id: str | None = None,
                 routing: dict | None = None, request_id: str | None = None,
                 report: dict | None = None) -> AsyncIterator[dict]:
    """The chunks of one streamed chat completion, as /v1 would send them (`stream_options.include_usage`
    adds the final usage chunk). Closing the iterator early stops the upstream and bills what was relayed.
    `report`, when given, receives what was billed once the stream ends: `request_id`, `usage`, `cost`
    (Decimal), `model`, `provider`."""
    rt = _runtime()
    ctx = None
    status, opened = 499, time.perf_counter()
    include_usage = pipeline.wants_stream_usage(request)
    try:
        ctx, body, ordered = await _prepare(rt, tenant, request, api_key_id=api_key_id, user=user, project=project,
                                            workflow_id=workflow_id, agent_id=agent_id, routing=routing,
                                            request_id=request_id, stream=True)
        batches, first = await pipeline.open_chat_stream(rt, ctx, body, ordered)
        opened = time.perf_counter() - ctx.attempts[-1].ms / 1000
        label = ctx.chosen.provider.name or ctx.chosen.provider.slug
        try:
            batch = first
            while batch is not None:
                for chunk in batch:
                    chunk["provider"] = label
                    if not pipeline.note_chunk(ctx, chunk):
                        if include_usage:
                            _priced(ctx, chunk.get("usage"))
                            yield chunk
                        continue
                    yield chunk if include_usage or "usage" not in chunk else {
                        k: v for k, v in chunk.items() if k != "usage"}
                batch = await anext(batches, None)
        except UpstreamError:
            await ctx.health.failure(ctx.ticket, latency_ms=(time.perf_counter() - opened) * 1000)
            ctx.ticket = None
            raise
        finally:
            await batches.aclose()  # stops reading upstream when the caller left early
        status = 200
        await ctx.health.success(ctx.ticket, latency_ms=(time.perf_counter() - opened) * 1000,
                                 ttft_ms=ctx.ttft_s * 1000)
        ctx.ticket = None
    except ApiError as error:
        status = error.status
        if ctx is not None:
            ctx.error_code = error.code or error.type
        raise
    finally:
        if ctx is not None:
            if ctx.ticket is not None:  # the caller stopped reading: says nothing about the deployment
                await ctx.health.release(ctx.ticket)
            await pipeline.finalize(rt, ctx, status)
            pipeline.account(ctx, status, ctx.error_code)
            if report is not None:
                report.update(_report(ctx))


def _report(ctx: RequestContext) -> dict:
    chosen = ctx.chosen
    return {"request_id": ctx.request_id, "usage": ctx.usage,
            "cost": cost_of(chosen.model, ctx.usage) if chosen and ctx.usage else None,
            "model": chosen.model.model_id if chosen else None,
            "provider": (chosen.provider.name or chosen.provider.slug) if chosen else None}
