"""Trying deployments in order until one answers.

For each planned candidate, each of its keys (starting where round-robin is): acquire the deployment (skipped
when its circuit is open or it is rate limited), call it with the time left of the request's deadline, and on a
retryable failure go on — after full-jitter exponential backoff when the next attempt goes to the same provider,
at once when it goes elsewhere. Every outcome reaches the health cache and the metrics.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

from apps.core.errors import ApiError, RateLimited, ServiceUnavailable, UpstreamError, UpstreamTimeout
from apps.providers.adapters.base import Target

from . import metrics
from .context import Attempt, RequestContext
from .planning import deployment_id
from .resolve import Candidate

_jitter = random.Random()  # noqa: S311 - backoff jitter, not security

Call = Callable[[Candidate, Target, float], Awaitable]


async def attempt(ctx: RequestContext, ordered: list[Candidate], call: Call, *, record_success: bool = True):
    """Run `call(candidate, target, timeout)` until one succeeds. Returns its result; the chosen candidate
    and deployment are on `ctx`. With record_success=False (streams) the caller records the outcome."""
    health = ctx.health
    first_failure: UpstreamError | None = None
    tries = 0
    failed_provider: int | None = None  # backoff only before retrying the provider that just failed
    left = sum(len(c.provider.keys) or 1 for c in ordered)  # deployments not yet tried or skipped
    for candidate in ordered:
        for credential_id, secret in candidate.provider.key_order():
            left -= 1
            if tries >= settings.MAX_UPSTREAM_ATTEMPTS:
                break
            deployment = deployment_id(candidate, credential_id)
            ticket = await health.acquire(deployment)
            if ticket is None:
                _note(ctx, deployment, candidate, "circuit_open")
                continue
            remaining = ctx.deadline - time.perf_counter()
            if tries and failed_provider == candidate.provider.id:
                remaining = await _backoff(ctx, tries, remaining)
            if remaining <= 0:
                await health.release(ticket)
                if first_failure is not None:  # e.g. the primary timed out and used up the deadline
                    raise first_failure
                raise UpstreamTimeout("The request's deadline passed before an upstream answered.",
                                      code="deadline_exceeded")
            tries += 1
            remaining = attempt_budget(remaining, candidate, more=left > 0 and tries < settings.MAX_UPSTREAM_ATTEMPTS)
            target = Target(candidate.provider.slug, candidate.provider.type, candidate.provider.base_url,
                            secret, candidate.model.upstream_name, candidate.provider.options)
            began = time.perf_counter()
            try:
                result = await call(candidate, target, remaining)
            except UpstreamError as error:
                elapsed = time.perf_counter() - began
                ctx.upstream_s += elapsed
                failed_provider = candidate.provider.id
                if error.retryable:
                    # Only a timeout says how slow a deployment is; an instant 500 must not make it look fast.
                    await health.failure(ticket, retry_after=error.retry_after, rate_limited=error.status == 429,
                                         latency_ms=elapsed * 1000 if error.status == 504 else None)
                else:  # the upstream answered; the request itself was at fault, not the deployment
                    await health.release(ticket)
                _note(ctx, deployment, candidate, "retryable_error" if error.retryable else "error",
                      status=error.upstream_status or error.status, elapsed=elapsed)
                # Report the first failure, unless it only said "not here" (404) and a later one says more.
                if first_failure is None or (first_failure.upstream_status == 404 and error.upstream_status != 404):
                    first_failure = error
                if not error.retryable:
                    raise first_failure from None
                continue
            except BaseException:
                await health.release(ticket)
                raise
            elapsed = time.perf_counter() - began
            ctx.upstream_s += elapsed
            if record_success:
                await health.success(ticket, latency_ms=elapsed * 1000)
            else:
                ctx.ticket = ticket
            _note(ctx, deployment, candidate, "ok", status=200, elapsed=elapsed)
            ctx.chosen, ctx.deployment = candidate, deployment
            return result
    if first_failure is not None:
        raise first_failure
    raise await _nothing_available(ctx)


def attempt_budget(remaining: float, candidate: Candidate, *, more: bool) -> float:
    """How long one attempt may take. A hung upstream must leave time to fail over: while other deployments
    remain, an attempt gets at most UPSTREAM_ATTEMPT_SHARE of the time left and at most
    UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS (0: no fixed cap); the last one gets whatever is left. A provider may
    cap its attempts further (options.timeout_seconds)."""
    if more:
        remaining = min(remaining, remaining * settings.UPSTREAM_ATTEMPT_SHARE)
        if settings.UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS > 0:
            remaining = min(remaining, settings.UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS)
    limit = candidate.provider.options.get("timeout_seconds")
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        remaining = min(remaining, float(limit))
    return remaining


async def _nothing_available(ctx: RequestContext) -> ApiError:
    """Every deployment was skipped: a 429 with Retry-After when they are all rate limited, else a 503."""
    skipped = [a.deployment for a in ctx.attempts if a.outcome == "circuit_open"]
    stats = await ctx.health.store.stats(skipped) if skipped else {}
    now = time.time()
    waits = [s.rate_limited_until - now for s in stats.values() if s.rate_limited_until]
    if waits and len(waits) == len(stats):
        wait = max(1, int(min(waits) + 0.999))
        return RateLimited(f"The upstream provider asked us to slow down; retry in {wait} s.",
                           code="upstream_rate_limited", headers={"retry-after": str(wait)})
    return ServiceUnavailable("Every deployment that could serve this request is unavailable (circuit open); "
                              "retry shortly.", code="no_healthy_deployment", headers={"retry-after": "1"})


async def _backoff(ctx: RequestContext, tries: int, remaining: float) -> float:
    """Full-jitter exponential backoff, never past the deadline. Returns the time left."""
    cap = min(settings.RETRY_BACKOFF_MAX_SECONDS, settings.RETRY_BACKOFF_BASE_SECONDS * (2 ** (tries - 1)))
    pause = min(_jitter.uniform(0, cap), max(0.0, remaining - 0.05))
    if pause > 0:
        await asyncio.sleep(pause)
        ctx.upstream_s += pause
    return ctx.deadline - time.perf_counter()


def _note(ctx: RequestContext, deployment: str, candidate: Candidate, outcome: str, *, status: int | None = None,
          elapsed: float = 0.0) -> None:
    ctx.attempts.append(Attempt(deployment, candidate.provider.slug, candidate.model.model_id, outcome,
                                status, round(elapsed * 1000, 2)))
    metrics.record_attempt(provider=candidate.provider.slug, model=candidate.model.model_id,
                           outcome="rate_limited" if status == 429 else outcome)
