"""The routing engine: from a model name's candidates (provider × model, in preference order) to the order in
which the gateway tries them. Pure and synchronous: no I/O, no ORM, no Redis; health comes in as a mapping.

`plan()` works in three steps:

1. **Exclusion.** A candidate that cannot serve the request (capabilities, context length) or breaks one of
   the request's constraints is excluded, under the constraint's name. Every constraint a candidate breaks
   is recorded, so the 400 for "nothing left" tells the caller everything they would have to relax.
   Exclusion names: tools, vision, json_mode, streaming, context_length, max_cost_per_1k_tokens,
   max_latency_ms, provider.only, provider.ignore, provider.max_price, provider.data_collection and, for
   model_specific route tables, route_table, cost_limit, performance_target.
2. **Ordering.** Precedence, strongest first: the tier (the requested model before OpenRouter `models`,
   before `fallback_models`), then the caller's explicit preferences (provider.order, prefer_models,
   preferred_providers, prefer_large_context), then the strategy. Every sort is stable, so ties keep the
   incoming preference order (tenant's own providers first, then by priority).
   `max_latency_ms` and a route's `performance_target` compare the whole-request latency average.
3. **Health.** `provider.allow_fallbacks: false` keeps one candidate per tier (or the `provider.order` ones);
   deployments that are unavailable now (circuit open, or rate limited) move to the end, never out: when
   everything is down the gateway still tries.

Prices: the catalogue's are USD per token. The per-request price is blended per 1,000 tokens:
(input_price × prompt_tokens + output_price × expected_output) / (prompt_tokens + expected_output) × 1000,
with expected_output = max_completion_tokens/max_tokens, or EXPECTED_OUTPUT_TOKENS (256) when the request
sets none. Unpriced (pass-through) models count as free; unmeasured latency never excludes.

`provider.require_parameters` needs no work of its own: the capability filter always applies (a tools request
never goes to a model without tools), which is OpenRouter's require_parameters behaviour for the
parameters the catalogue describes (tools, vision, JSON mode, streaming).

Where it lives: this module (`plan` and the precedence of tiers, preferences and health),
routing_candidates.py (a candidate's row, health and name matching), routing_constraints.py (step 1),
routing_strategies.py (the strategies of step 2), route_tables.py (model_specific route tables) and
task_inference.py (the task of a task_specific request).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from apps.core.errors import InternalError
from apps.core.vocabulary import ROUTING_STRATEGIES
from apps.providers.route_options import (
    TASK_TYPES,
    Needs,
    RouteOptions,
    parse_route_options,
    request_needs,
    split_suffix,
)

from .prompt_tokens import PromptTokenCounter, estimate_prompt_tokens
from .resolve import Candidate
from .route_tables import RouteRule, parse_cost_limit, parse_duration_ms, parse_route_rule, parse_route_table
from .routing_candidates import (
    CandidateHealth,
    HealthLike,
    Row,
    blended_price_per_1k,
    candidate_key,
    candidate_label,
    first_match,
    model_matches,
    provider_matches,
)
from .routing_constraints import CONSTRAINT_PARAMS, exclusions, no_candidate
from .routing_strategies import StrategyOrder
from .snapshot import ModelInfo
from .task_inference import infer_task

__all__ = [
    "TASK_TYPES", "CandidateHealth", "HealthLike", "Needs", "Plan", "PromptTokenCounter", "RouteOptions",
    "RouteRule", "blended_price_per_1k", "candidate_key", "estimate_prompt_tokens", "infer_task",
    "parse_cost_limit", "parse_duration_ms", "parse_route_options", "parse_route_table", "plan",
    "request_needs", "split_suffix",
]

STRATEGIES = frozenset(ROUTING_STRATEGIES)
EXPECTED_OUTPUT_TOKENS = 256
PROBE_SHARE = 0.1
LARGE_CONTEXT_TOKENS = 100_000  # prefer_large_context: windows at least this large go first


@dataclass(slots=True)
class Plan:
    ordered: list[Candidate]
    excluded: dict[str, list[str]] = field(default_factory=dict)  # constraint → "provider/model" labels
    strategy: str = "failover_chain"
    task: str | None = None  # task_specific: the task routed for
    probed: Candidate | None = None  # performance_first: the unmeasured candidate moved first, if any


_RNG = random.Random()  # noqa: S311 - routing spread, not security


def plan(candidates: Sequence[Candidate], *, needs: Needs, options: RouteOptions, health: Mapping | None,
         tenant_routes: Mapping | None = None, rng: random.Random | None = None, weights: Mapping | None = None,
         prompt_tokens: int | Callable[[ModelInfo], int] | None = None, tiers: Sequence[int] | None = None,
         probe_share: float = PROBE_SHARE) -> Plan:
    """Order `candidates` (in preference order) for this request.

    health: candidate_key(c) → CandidateHealth-like; a missing key means never measured.
    tenant_routes: the tenant's model_specific route table (raw dicts or parse_route_table's RouteRules).
    weights: balanced weights overriding DEFAULT_WEIGHTS ({"cost", "latency", "errors"}).
    prompt_tokens: an int, or per model (a PromptTokenCounter(body)); None counts as 0.
    tiers: per candidate, its model's position in RouteOptions.model_chain() (default: all 0); a lower tier
    always goes first, whatever the strategy.
    Raises NoCandidate (400 `no_candidate_meets_constraints`) when exclusions leave nothing.
    """
    rng = rng or _RNG
    health = health or {}
    strategy = options.strategy
    rule = None
    if strategy == "model_specific" and tenant_routes and options.model in tenant_routes:
        try:
            rule = parse_route_rule(tenant_routes[options.model])
        except ValueError as exc:
            raise InternalError(f"The route table entry for `{options.model}` is invalid: {exc}.", param="model",
                                code="invalid_route_table") from None
    expected_output = needs.max_output or EXPECTED_OUTPUT_TOKENS
    count = prompt_tokens if callable(prompt_tokens) else None
    fixed = prompt_tokens if isinstance(prompt_tokens, int) else 0

    kept: list[Row] = []
    excluded: dict[str, list[str]] = {}
    for index, candidate in enumerate(candidates):
        tokens = count(candidate.model) if count is not None else fixed
        row = Row(index, candidate, tiers[index] if tiers is not None else 0, health.get(candidate_key(candidate)),
                  tokens, blended_price_per_1k(candidate.model, tokens, expected_output))
        broken = exclusions(row, needs, options, rule)
        if not broken:
            kept.append(row)
            continue
        label = candidate_label(candidate)
        for name in broken:
            labels = excluded.setdefault(name, [])
            if label not in labels:
                labels.append(label)
    if not kept:
        raise no_candidate({k: excluded[k] for k in CONSTRAINT_PARAMS if k in excluded}, needs)
    excluded = {k: excluded[k] for k in CONSTRAINT_PARAMS if k in excluded}

    order = StrategyOrder(needs=needs, options=options, rng=rng, weights=weights, probe_share=probe_share, rule=rule)
    if len(kept) == 1 and strategy != "task_specific":  # nothing to order (task_specific also names the task)
        rows = kept
    else:
        rows = getattr(order, strategy if strategy in STRATEGIES else "failover_chain")(kept)

    # Explicit preferences beat the strategy; tiers beat both. Python's sort is stable.
    o = options
    if o.provider_order or o.prefer_models or o.preferred_providers or o.prefer_large_context:
        rows.sort(key=lambda r: (
            r.tier,
            first_match(o.provider_order, lambda n: provider_matches(r.candidate.provider, n)),
            first_match(o.prefer_models, lambda n: model_matches(r.candidate, n)),
            first_match(o.preferred_providers, lambda n: provider_matches(r.candidate.provider, n)),
            o.prefer_large_context and r.candidate.model.context_window < LARGE_CONTEXT_TOKENS,
        ))
    elif tiers is not None:
        rows.sort(key=lambda r: r.tier)
    if not o.allow_fallbacks:
        rows = _without_fallbacks(rows, o)
    available = [r for r in rows if r.health is None or r.health.available]
    if len(available) < len(rows):
        rows = available + [r for r in rows if not (r.health is None or r.health.available)]
    return Plan([r.candidate for r in rows], excluded, strategy, order.task,
                order.probed.candidate if order.probed is not None else None)


def _without_fallbacks(rows: list[Row], options: RouteOptions) -> list[Row]:
    """provider.allow_fallbacks=false: per tier, only the provider.order providers (or, without an order or
    when none of them serves that tier, only the tier's first candidate)."""
    tiers: dict[int, list[Row]] = {}
    for row in rows:
        tiers.setdefault(row.tier, []).append(row)
    out = []
    for group in tiers.values():
        ordered = [r for r in group
                   if any(provider_matches(r.candidate.provider, n) for n in options.provider_order)]
        out += ordered or group[:1]
    return out
