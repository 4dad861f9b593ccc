"""Rate limits per key, per tenant and globally (RATE_LIMIT_*): one atomic admit over every bucket that applies,
OpenAI's `x-ratelimit-*` headers, and settlement of the token estimate to the real count."""

from __future__ import annotations

from apps.core.errors import RateLimited

from ..context import RequestContext
from ..limits import Limit, RateLimiter, limits_for
from ..prompt_tokens import LazyPromptTokens
from ..snapshot import Snapshot


def estimated_tokens(body: dict, counter: LazyPromptTokens | None = None) -> int:
    """What a request may use before it runs: the prompt (quick upper bound) plus the output cap it asked for."""
    quick = (counter or LazyPromptTokens(body)).encoded("quick")
    return quick + (body.get("max_completion_tokens") or body.get("max_tokens") or 0)


class RateLimits:
    def __init__(self, limiter: RateLimiter):
        self.limiter = limiter

    async def admit(self, ctx: RequestContext, snapshot: Snapshot, body: dict) -> None:
        """Nothing to do when no limit is configured for the key, its tenant or the server."""
        key_rpm, key_tpm, key_concurrent = ctx.key.limits if ctx.key else (None, None, None)
        tenant = snapshot.tenants.get(ctx.tenant_id) if ctx.tenant_id is not None else None
        tenant_rpm, tenant_tpm, tenant_concurrent = tenant.limits if tenant else (None, None, None)
        limits = limits_for(ctx.key.id if ctx.key else None, ctx.tenant_id, key_rpm=key_rpm, key_tpm=key_tpm,
                            key_concurrent=key_concurrent, tenant_rpm=tenant_rpm, tenant_tpm=tenant_tpm,
                            tenant_concurrent=tenant_concurrent)
        if limits:
            await self.admit_limits(ctx, limits, estimated_tokens(body, ctx.prompt_counter(body)), headers=True)

    async def admit_limits(self, ctx: RequestContext, limits: list[Limit], estimate: int, *, headers: bool = False,
                           message: str = "{}") -> None:
        decision = await self.limiter.admit(limits, tokens=estimate)
        if headers:
            ctx.response_headers.update(decision.headers())
        if not decision.allowed:
            raise RateLimited(message.format(decision.message or "Rate limit reached."),
                              headers=decision.headers() if not headers else None)
        if decision.lease is not None or any(limit.tokens_per_minute for limit in limits):
            ctx.rates.append((limits, estimate, decision.lease))

    async def settle(self, ctx: RequestContext, usage: dict | None) -> None:
        for limits, estimate, lease in ctx.rates:
            if usage:
                await self.limiter.settle(limits, estimated_tokens=estimate,
                                          actual_tokens=int(usage.get("total_tokens") or 0), lease=lease)
            elif ctx.chosen is None:  # nothing was served: refund the tokens, the request still counts
                await self.limiter.settle(limits, estimated_tokens=estimate, actual_tokens=0, lease=lease)
            else:
                await self.limiter.release(limits, lease)
        ctx.rates = []
