"""Routing one request: which deployments, in what order, and the attempts against them.

- `candidates_for` turns the requested name (and OpenRouter's `models`, `circuit_breaker.fallback_models`,
  a tenant's own virtual model) into candidates, each tagged with its tier in that chain;
- `Route.plan` reads the deployments' shared health and lets `routing.plan` filter and order them;
- `Route.attempt` tries keys of one deployment, then the next candidate, with exponential backoff and
  full jitter, inside one deadline, skipping deployments whose circuit is open or which are rate limited,
  and records every outcome in the health store and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings

from apps.providers.adapters.base import Target, UpstreamError

from . import metrics
from .errors import GatewayError, NotFound
from .health import HealthStats
from .health_view import HealthView, Ticket
from .resolve import Candidate, resolve
from .route_options import RouteOptions, parse_route_options, request_needs
from .routing import candidate_key, plan
from .snapshot import VIRTUAL_MODELS, KeyInfo, Snapshot
from .tokens import LazyPromptTokens

route_log = logging.getLogger("apps.gateway.route")
_jitter = random.Random()  # noqa: S311 - backoff jitter, not security


def deployment_id(candidate: Candidate, credential_id: int | None) -> str:
    return f"{candidate.provider.id}:{credential_id or 0}:{candidate.model.model_id}"


def routing_options(snapshot: Snapshot, tenant_id: int | None, body: dict) -> tuple[dict, RouteOptions]:
    """The request's routing options; a tenant's virtual model contributes its strategy and constraints
    (the request's own circuit_breaker options win where both say something)."""
    tenant = snapshot.tenants.get(tenant_id) if tenant_id is not None else None
    default = (tenant.routing_strategy if tenant and tenant.routing_strategy else settings.DEFAULT_ROUTING_STRATEGY)
    if not settings.ENABLE_SMART_ROUTING:
        default = "failover_chain"
    name = body.get("model", "")
    virtual = snapshot.virtual_model(tenant_id, name.split(":floor")[0].split(":nitro")[0])
    strategies = dict(VIRTUAL_MODELS)
    if virtual is not None:
        strategies[virtual.name] = virtual.strategy
        body = {**body, "circuit_breaker": {**virtual.constraints, **(body.get("circuit_breaker") or {})}}
    return body, parse_route_options(body, default_strategy=default, virtual_models=strategies)


def candidates_for(snapshot: Snapshot, tenant_id: int | None, options: RouteOptions, *,
                   mode: str) -> tuple[list[Candidate], list[int]]:
    """Candidates of every name in the model chain, deduplicated, with each one's tier: the chain position,
    and within it the tenant's own providers before global ones (bring your own key first), so a strategy
    reorders only within a tier. The requested name must resolve; a fallback name that does not is skipped."""
    seen: set[tuple[int, str]] = set()
    candidates: list[Candidate] = []
    tiers: list[int] = []
    for tier, name in enumerate(options.model_chain()):
        try:
            found = _resolve_name(snapshot, tenant_id, name, mode=mode)
        except GatewayError:
            if tier == 0:
                raise
            continue
        for candidate in found:
            key = (candidate.provider.id, candidate.model.model_id)
            if key not in seen:
                seen.add(key)
                candidates.append(candidate)
                tiers.append(tier * 2 + (0 if candidate.provider.tenant_id is not None else 1))
    return candidates, tiers


def _resolve_name(snapshot: Snapshot, tenant_id: int | None, name: str, *, mode: str) -> list[Candidate]:
    virtual = snapshot.virtual_model(tenant_id, name)
    if virtual is None or name in VIRTUAL_MODELS and not virtual.candidates:
        return resolve(snapshot, tenant_id, name, mode=mode)
    if not virtual.candidates:  # a tenant's virtual model over everything it can reach
        return resolve(snapshot, tenant_id, "auto", mode=mode)
    found: list[Candidate] = []
    for member in virtual.candidates:
        try:
            found += resolve(snapshot, tenant_id, member, mode=mode)
        except GatewayError:
            continue
    if not found:
        raise NotFound(f"None of the models of `{name}` is reachable.", param="model", code="model_not_found")
    return found


def _aggregate(stats: list[HealthStats]) -> HealthStats | None:
    """One candidate's health from its keys' deployments: usable while any key is."""
    measured = [s for s in stats if s.requests or s.latency_ms is not None or s.circuit != "closed"
                or s.rate_limited_until]
    if not measured:
        return None
    requests = sum(s.requests for s in stats)
    errors = sum(s.errors for s in stats)
    latencies = [s.latency_ms for s in stats if s.latency_ms is not None]
    ttfts = [s.ttft_ms for s in stats if s.ttft_ms is not None]
    usable = [s for s in stats if s.available]
    circuit = "closed" if any(s.circuit == "closed" for s in stats) else (
        "half_open" if any(s.circuit == "half_open" for s in stats) else "open")
    limited = None if usable else min((s.rate_limited_until or 0.0) for s in stats) or None
    return HealthStats(requests, errors, errors / requests if requests else 0.0,
                       min(s.consecutive_failures for s in stats),
                       sum(latencies) / len(latencies) if latencies else None,
                       sum(ttfts) / len(ttfts) if ttfts else None,
                       circuit, limited, sum(s.inflight for s in stats))


@dataclass
class Attempt:
    deployment: str
    provider: str
    model: str
    outcome: str  # ok | retryable_error | error | circuit_open
    status: int | None = None
    ms: float = 0.0


@dataclass
class Route:
    """The state of one request's routing, from planning to the log line."""

    health: HealthView
    request_id: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    strategy: str = "failover_chain"
    options: RouteOptions | None = None
    excluded: dict = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting on upstreams and backoff (not our overhead)
    chosen: Candidate | None = None
    deployment: str | None = None
    tenant_id: int | None = None
    usage: dict | None = None
    ttft_s: float | None = None
    ticket: Ticket | None = None  # the chosen deployment's, while its outcome is pending (streams)
    key: KeyInfo | None = None
    body: dict | None = None
    wall_started: float = field(default_factory=time.time)
    error_code: str | None = None
    streamed: bool = False
    streamed_text: list = field(default_factory=list)  # content relayed so far, to count when usage is missing
    rates: list = field(default_factory=list)  # open rate-limit admissions: (limits, estimated tokens, lease)
    spend_rules: bool = False  # the tenant has rules on today's spend: count this request's cost
    finalized: bool = False
    reservation: object = None  # the budget reservation (apps.billing.budget_outcomes.Reservation)
    workflow_id: str = ""
    agent_id: str = ""

    @property
    def deadline(self) -> float:
        return self.started + settings.REQUEST_TIMEOUT_SECONDS

    # ---- planning -------------------------------------------------------------------------------------
    async def plan(self, body: dict, options: RouteOptions, candidates: list[Candidate], tiers: list[int],
                   snapshot: Snapshot) -> list[Candidate]:
        self.options, self.strategy = options, options.strategy
        ids = [(c, [deployment_id(c, cred) for cred, _ in (c.provider.keys or [(None, None)])]) for c in candidates]
        stats = await self.health.stats([i for _, group in ids for i in group])
        health = {}
        for candidate, group in ids:
            aggregated = _aggregate([stats[i] for i in group if i in stats])
            if aggregated is not None:
                health[candidate_key(candidate)] = aggregated
        weights = {"cost": settings.ROUTING_WEIGHT_COST, "latency": settings.ROUTING_WEIGHT_LATENCY,
                   "errors": settings.ROUTING_WEIGHT_ERRORS}
        needs = request_needs(body)
        result = plan(candidates, needs=needs, options=options, health=health,
                      tenant_routes=snapshot.routes_for(self.tenant_id), weights=weights,
                      prompt_tokens=LazyPromptTokens(body, max_output=needs.max_output or 0), tiers=tiers)
        self.excluded = result.excluded
        return result.ordered

    # ---- attempts -------------------------------------------------------------------------------------
    async def attempt(self, ordered: list[Candidate], call: Callable[[Candidate, Target, float], Awaitable],
                      *, record_success: bool = True):
        """Run `call(candidate, target, timeout)` until one succeeds. Returns its result; the chosen candidate
        and deployment are on self. With record_success=False (streams) the caller records the outcome."""
        first_failure: UpstreamError | None = None
        tries = 0
        failed_provider: int | None = None  # backoff only before retrying the provider that just failed
        for candidate in ordered:
            for credential_id, secret in candidate.provider.key_order():
                if tries >= settings.MAX_UPSTREAM_ATTEMPTS:
                    break
                deployment = deployment_id(candidate, credential_id)
                ticket = await self.health.acquire(deployment)
                if ticket is None:
                    self._note(deployment, candidate, "circuit_open")
                    continue
                remaining = self.deadline - time.perf_counter()
                if tries and failed_provider == candidate.provider.id:
                    remaining = await self._backoff(tries, remaining)
                if remaining <= 0:
                    await self.health.release(ticket)
                    if first_failure is not None:  # e.g. the primary timed out and used up the deadline
                        raise first_failure
                    raise GatewayError("The request's deadline passed before an upstream answered.", status=504,
                                       type="timeout", code="deadline_exceeded")
                tries += 1
                # A provider may cap one attempt (options.timeout_seconds) so a hung upstream leaves time to fail over.
                limit = candidate.provider.options.get("timeout_seconds")
                if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
                    remaining = min(remaining, float(limit))
                target = Target(candidate.provider.slug, candidate.provider.type, candidate.provider.base_url,
                                secret, candidate.model.upstream_name, candidate.provider.options)
                began = time.perf_counter()
                try:
                    result = await call(candidate, target, remaining)
                except UpstreamError as error:
                    elapsed = time.perf_counter() - began
                    self.upstream_s += elapsed
                    failed_provider = candidate.provider.id
                    if error.retryable:
                        # Only a timeout says how slow a deployment is; an instant 500 must not make it look fast.
                        await self.health.failure(ticket, retry_after=error.retry_after,
                                                  rate_limited=error.status == 429,
                                                  latency_ms=elapsed * 1000 if error.status == 504 else None)
                    else:  # the upstream answered; the request itself was at fault, not the deployment
                        await self.health.release(ticket)
                    self._note(deployment, candidate, "retryable_error" if error.retryable else "error",
                               error.upstream_status or error.status, elapsed)
                    # Report the first failure, unless it only said "not here" (404) and a later one says more.
                    if first_failure is None or (first_failure.upstream_status == 404
                                                 and error.upstream_status != 404):
                        first_failure = error
                    if not error.retryable:
                        raise first_failure from None
                    continue
                except BaseException:
                    await self.health.release(ticket)
                    raise
                elapsed = time.perf_counter() - began
                self.upstream_s += elapsed
                if record_success:
                    await self.health.success(ticket, latency_ms=elapsed * 1000)
                else:
                    self.ticket = ticket
                self._note(deployment, candidate, "ok", 200, elapsed)
                self.chosen, self.deployment = candidate, deployment
                return result
        if first_failure is not None:
            raise first_failure
        raise await self._nothing_available()

    async def _nothing_available(self) -> GatewayError:
        """Every deployment was skipped: a 429 with Retry-After when they are all rate limited, else a 503."""
        skipped = [a.deployment for a in self.attempts if a.outcome == "circuit_open"]
        stats = await self.health.store.stats(skipped) if skipped else {}
        now = time.time()
        waits = [s.rate_limited_until - now for s in stats.values() if s.rate_limited_until]
        if waits and len(waits) == len(stats):
            wait = max(1, int(min(waits) + 0.999))
            return GatewayError(f"The upstream provider asked us to slow down; retry in {wait} s.", status=429,
                                type="rate_limit_error", code="upstream_rate_limited",
                                headers={"retry-after": str(wait)})
        return GatewayError("Every deployment that could serve this request is unavailable (circuit open); "
                            "retry shortly.", status=503, type="server_error", code="no_healthy_deployment",
                            headers={"retry-after": "1"})

    async def _backoff(self, tries: int, remaining: float) -> float:
        """Full-jitter exponential backoff, never past the deadline. Returns the time left."""
        cap = min(settings.RETRY_BACKOFF_MAX_SECONDS, settings.RETRY_BACKOFF_BASE_SECONDS * (2 ** (tries - 1)))
        pause = min(_jitter.uniform(0, cap), max(0.0, remaining - 0.05))
        if pause > 0:
            await asyncio.sleep(pause)
            self.upstream_s += pause
        return self.deadline - time.perf_counter()

    def _note(self, deployment: str, candidate: Candidate, outcome: str, status: int | None = None,
              elapsed: float = 0.0) -> None:
        self.attempts.append(Attempt(deployment, candidate.provider.slug, candidate.model.model_id, outcome,
                                     status, round(elapsed * 1000, 2)))
        metrics.record_attempt(provider=candidate.provider.slug, model=candidate.model.model_id,
                               outcome="rate_limited" if status == 429 else outcome)

    # ---- reporting ------------------------------------------------------------------------------------
    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started - self.upstream_s) * 1000)

    def headers(self) -> dict[str, str]:
        tried = sum(1 for a in self.attempts if a.outcome != "circuit_open")
        return {"x-cb-route": f"strategy={self.strategy}; attempts={tried}",
                "x-cb-overhead-ms": f"{self.overhead_ms():.2f}"}

    def log(self, *, status: int, error: str | None = None) -> None:
        """One structured line per request (ROUTE_LOG=all), or only for eventful ones (the default: an error,
        a failover, an exclusion) — routine first-attempt successes are most of the traffic and cost CPU."""
        mode = settings.ROUTE_LOG
        if mode == "off" or not route_log.isEnabledFor(logging.INFO):
            return
        if mode == "eventful" and status < 400 and not error and len(self.attempts) <= 1 and not self.excluded:
            return
        options = self.options
        route_log.info("route %s", self.request_id, extra={"cb": {
            "event": "route", "request_id": self.request_id, "endpoint": self.endpoint, "tenant": self.tenant_id,
            "requested": options.model if options else None, "strategy": self.strategy,
            "excluded": self.excluded, "status": status, "error": error,
            "provider": self.chosen.provider.slug if self.chosen else None,
            "model": self.chosen.model.model_id if self.chosen else None,
            "attempts": [a.__dict__ for a in self.attempts],
            "budget": {"user_id": options.budget_user_id, "project_id": options.budget_project_id}
            if options and (options.budget_user_id or options.budget_project_id) else None,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
            "overhead_ms": round(self.overhead_ms(), 2),
        }})

    # ---- the usage ledger's record ------------------------------------------------------------------------
    def final_usage(self) -> tuple[dict | None, bool]:
        """The usage to bill and whether we estimated it: the upstream's, else counted from what was relayed
        (a stream cut short by the client, or an upstream that reports none)."""
        if self.usage or self.chosen is None or not self.streamed:
            return self.usage, False
        from . import tokens

        model = self.chosen.model
        prompt = tokens.estimate_prompt_tokens(self.body or {}, model)
        text = "".join(self.streamed_text)
        completion = math.ceil(tokens.count_text(text) * tokens.family_factor(model)) if text else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}, True

    def usage_entry(self, status: int, usage: dict | None, estimated: bool, cost) -> dict:
        options, chosen, key, body = self.options, self.chosen, self.key, self.body or {}
        details = (usage or {}).get("prompt_tokens_details") or {}
        completion_details = (usage or {}).get("completion_tokens_details") or {}
        user = (options.budget_user_id if options else None) or body.get("user") or (key.user_label if key else "")
        project = (options.budget_project_id if options else None) or (key.project_label if key else "")
        return {
            "request_id": self.request_id, "created_at": self.wall_started, "tenant_id": self.tenant_id,
            "api_key_id": key.id if key else None, "user_label": user or "", "project_label": project or "",
            "workflow_id": self.workflow_id, "agent_id": self.agent_id, "endpoint": self.endpoint,
            "provider": chosen.provider.slug if chosen else (self.attempts[-1].provider if self.attempts else ""),
            "deployment": self.deployment or "",
            "model_requested": (options.model if options else body.get("model")) or "",
            "model_served": chosen.model.model_id if chosen else "", "strategy": self.strategy,
            "attempts": sum(1 for a in self.attempts if a.outcome != "circuit_open"),
            "prompt_tokens": (usage or {}).get("prompt_tokens") or 0,
            "completion_tokens": (usage or {}).get("completion_tokens") or 0,
            "cached_tokens": details.get("cached_tokens") or 0,
            "cache_write_tokens": details.get("cache_write_tokens") or 0,
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0,
            "cost": str(cost), "latency_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "ttft_ms": round(self.ttft_s * 1000, 3) if self.ttft_s is not None else None,
            "status": status, "error_type": self.error_code or "", "streamed": self.streamed,
            "usage_estimated": estimated,
        }
