"""Which deployments may serve one request, and in what order.

- `routing_options` reads the request's routing options (a tenant's virtual model contributes its own);
- `candidates_for` turns the requested name (and OpenRouter's `models`, `circuit_breaker.fallback_models`, a
  tenant's own virtual model) into candidates, each tagged with its tier in that chain;
- `plan` reads the deployments' shared health and lets `routing.plan` filter and order them.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from apps.core.errors import ApiError, ModelNotFound
from apps.providers.route_options import ROUTING_FIELDS, RouteOptions, parse_route_options, request_needs

from .context import RequestContext
from .health import HealthStats
from .resolve import Candidate, resolve
from .routing import candidate_key
from .routing import plan as routing_plan
from .snapshot import VIRTUAL_MODELS, Snapshot


def deployment_id(candidate: Candidate, credential_id: int | None) -> str:
    return f"{candidate.provider.id}:{credential_id or 0}:{candidate.model.model_id}"


# A tenant's virtual model named by a body without routing fields of its own: options parsed once per (virtual
# model, name, default strategy). The virtual model object is kept with them (a new snapshot makes new ones).
_virtual_options: dict[tuple, tuple[object, RouteOptions]] = {}


def routing_options(snapshot: Snapshot, tenant_id: int | None, body: dict) -> tuple[dict, RouteOptions]:
    """The request's routing options; a tenant's virtual model contributes its strategy and constraints
    (the request's own circuit_breaker options win where both say something)."""
    tenant = snapshot.tenants.get(tenant_id) if tenant_id is not None else None
    default = (tenant.routing_strategy if tenant and tenant.routing_strategy else settings.DEFAULT_ROUTING_STRATEGY)
    if not settings.ENABLE_SMART_ROUTING:
        default = "failover_chain"
    name = body.get("model", "")
    virtual = snapshot.virtual_model(tenant_id, name.split(":floor")[0].split(":nitro")[0])
    if virtual is None:
        return body, parse_route_options(body, default_strategy=default, virtual_models=VIRTUAL_MODELS)
    plain = not any(field in body for field in ROUTING_FIELDS)
    body = {**body, "circuit_breaker": {**virtual.constraints, **(body.get("circuit_breaker") or {})}}
    key = (id(virtual), name, default)
    if plain and (hit := _virtual_options.get(key)) is not None and hit[0] is virtual:
        return body, hit[1]
    options = parse_route_options(body, default_strategy=default,
                                  virtual_models={**VIRTUAL_MODELS, virtual.name: virtual.strategy})
    if plain:
        if len(_virtual_options) >= 4096:
            _virtual_options.clear()
        _virtual_options[key] = (virtual, options)
    return body, options


def candidates_for(snapshot: Snapshot, tenant_id: int | None, options: RouteOptions, *,
                   mode: str) -> tuple[tuple[Candidate, ...], tuple[int, ...]]:
    """Candidates of every name in the model chain, deduplicated, with each one's tier: the chain position,
    and within it the tenant's own providers before global ones (bring your own key first), so a strategy
    reorders only within a tier. The requested name must resolve; a fallback name that does not is skipped.

    They depend on nothing but the snapshot, so they are remembered on it per (tenant, mode, chain) — a new
    snapshot starts afresh; the tuples are shared by every request asking the same."""
    key = (tenant_id, mode, *options.model_chain())
    memo = snapshot.memo
    found = memo.get(key)
    if found is None:
        found = _candidates(snapshot, tenant_id, options, mode=mode)
        if len(memo) >= 4096:  # names a client makes up (`provider/anything`) must not grow it without end
            memo.clear()
        memo[key] = found
    return found


def _candidates(snapshot: Snapshot, tenant_id: int | None, options: RouteOptions, *,
                mode: str) -> tuple[tuple[Candidate, ...], tuple[int, ...]]:
    seen: set[tuple[int, str]] = set()
    candidates: list[Candidate] = []
    tiers: list[int] = []
    for tier, name in enumerate(options.model_chain()):
        try:
            found = _resolve_name(snapshot, tenant_id, name, mode=mode)
        except ApiError:
            if tier == 0:
                raise
            continue
        for candidate in found:
            key = (candidate.provider.id, candidate.model.model_id)
            if key not in seen:
                seen.add(key)
                candidates.append(candidate)
                tiers.append(tier * 2 + (0 if candidate.provider.tenant_id is not None else 1))
    return tuple(candidates), tuple(tiers)


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
        except ApiError:
            continue
    if not found:
        raise ModelNotFound(f"None of the models of `{name}` is reachable.", param="model")
    return found


def _aggregate(stats: list[HealthStats]) -> HealthStats | None:
    """One candidate's health from its keys' deployments: usable while any key is."""
    if len(stats) == 1 and stats[0].rate_limited_until is None:  # one key, never rate limited: itself
        s = stats[0]
        return s if s.requests or s.latency_ms is not None or s.circuit != "closed" else None
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


async def plan(ctx: RequestContext, body: dict, options: RouteOptions, candidates: Sequence[Candidate], *,
               tiers: Sequence[int], snapshot: Snapshot) -> list[Candidate]:
    """The candidates that can serve `body`, best first, by the request's strategy and the shared health."""
    ctx.options, ctx.strategy = options, options.strategy
    ids = [(c, [deployment_id(c, cred) for cred, _ in (c.provider.keys or [(None, None)])]) for c in candidates]
    stats = await ctx.health.stats([i for _, group in ids for i in group])
    health = {}
    for candidate, group in ids:
        aggregated = _aggregate([stats[i] for i in group if i in stats])
        if aggregated is not None:
            health[candidate_key(candidate)] = aggregated
    weights = {"cost": settings.ROUTING_WEIGHT_COST, "latency": settings.ROUTING_WEIGHT_LATENCY,
               "errors": settings.ROUTING_WEIGHT_ERRORS}
    needs = request_needs(body)
    result = routing_plan(candidates, needs=needs, options=options, health=health,
                          tenant_routes=snapshot.routes_for(ctx.tenant_id), weights=weights,
                          prompt_tokens=ctx.prompt_counter(body, max_output=needs.max_output or 0), tiers=tiers)
    ctx.excluded = result.excluded
    return result.ordered
