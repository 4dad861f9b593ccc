"""The constraints a candidate must meet to stay in a plan (capabilities, context length, the request's
cost/latency/provider rules, a model_specific route table), and the 400 `no_candidate_meets_constraints` that
names every constraint and what it excluded when nothing is left."""

from __future__ import annotations

from apps.core.errors import NoCandidate
from apps.providers.route_options import Needs, RouteOptions

from .route_tables import RouteRule
from .routing_candidates import Row, provider_matches

MAX_LABELS = 10  # per constraint in the "nothing left" message

CONSTRAINT_PARAMS = {
    "tools": "tools",
    "vision": "messages",
    "json_mode": "response_format",
    "streaming": "stream",
    "context_length": "messages",
    "max_cost_per_1k_tokens": "circuit_breaker.max_cost_per_1k_tokens",
    "max_latency_ms": "circuit_breaker.max_latency_ms",
    "provider.only": "provider.only",
    "provider.ignore": "provider.ignore",
    "provider.max_price": "provider.max_price",
    "provider.data_collection": "provider.data_collection",
    "route_table": "model",
    "cost_limit": "model",
    "performance_target": "model",
}


def exclusions(row: Row, needs: Needs, options: RouteOptions, rule: RouteRule | None) -> list[str]:
    model, provider, h = row.candidate.model, row.candidate.provider, row.health
    caps = model.capabilities
    broken = []
    if needs.tools and "tools" not in caps:
        broken.append("tools")
    if needs.vision and "vision" not in caps:
        broken.append("vision")
    if needs.json_mode and "json_mode" not in caps:
        broken.append("json_mode")
    if needs.streaming and "streaming" not in caps:
        broken.append("streaming")
    output = needs.max_output or 0
    if (model.context_window and row.prompt_tokens + output > model.context_window) or (
            model.max_output_tokens and output > model.max_output_tokens):
        broken.append("context_length")
    limit = options.max_cost_per_1k_tokens
    if limit is not None and row.price > limit * (1 + 1e-9):
        broken.append("max_cost_per_1k_tokens")
    latency = h.latency_ms if h is not None else None
    if options.max_latency_ms is not None and latency is not None and latency > options.max_latency_ms:
        broken.append("max_latency_ms")
    if options.only and not any(provider_matches(provider, n) for n in options.only):
        broken.append("provider.only")
    if options.ignore and any(provider_matches(provider, n) for n in options.ignore):
        broken.append("provider.ignore")
    prompt_cap, completion_cap = options.max_price_prompt, options.max_price_completion
    if (prompt_cap is not None and float(model.input_price) * 1e6 > prompt_cap * (1 + 1e-9)) or (
            completion_cap is not None and float(model.output_price) * 1e6 > completion_cap * (1 + 1e-9)):
        broken.append("provider.max_price")
    if options.data_collection == "deny" and provider.collects_data:
        broken.append("provider.data_collection")
    if rule is not None:
        if not any(provider_matches(provider, n) for n in (rule.primary, *rule.fallback)):
            broken.append("route_table")
        if rule.cost_limit_per_1k is not None and row.price > rule.cost_limit_per_1k * (1 + 1e-9):
            broken.append("cost_limit")
        if rule.performance_target_ms is not None and latency is not None and latency > rule.performance_target_ms:
            broken.append("performance_target")
    return broken


def no_candidate(excluded: dict[str, list[str]], needs: Needs) -> NoCandidate:
    if not excluded:
        return NoCandidate("No model is available for this request.", param="model")
    parts = []
    for name, labels in excluded.items():
        shown = ", ".join(labels[:MAX_LABELS])
        if len(labels) > MAX_LABELS:
            shown += f" and {len(labels) - MAX_LABELS} more"
        parts.append(f"{name} excluded {shown}")
    first = next(iter(excluded))
    param = CONSTRAINT_PARAMS.get(first, first)
    if first == "streaming" and not needs.stream:
        param = "circuit_breaker.require_streaming"
    return NoCandidate(f"No model meets the request's constraints: {'; '.join(parts)}.", param=param)
